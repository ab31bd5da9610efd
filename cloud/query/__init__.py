"""MQL for ``TabularDataByMQL``: decode BSON stages, evaluate them, encode the results.

The data service receives a MongoDB aggregation pipeline (one BSON document per
stage) and answers with one BSON document per result. Ferry has no MongoDB, so
it evaluates a documented subset of the aggregation language in Python over the
store's reading documents (``docs/mql.md``)::

    pipeline = compile_pipeline(decode_stages(request.mql_binary))
    flt = pipeline.leading_filter()  # optional push-down into the store
    raw_data = encode_documents(pipeline.run(store.iter_reading_documents(...)))
"""

from __future__ import annotations

from cloud.query.bsonio import CODEC_OPTIONS, decode_stages, encode_documents
from cloud.query.mql import PUSHDOWN_FIELDS, SUPPORTED_STAGES, Pipeline, compile_pipeline

__all__ = [
    "CODEC_OPTIONS",
    "PUSHDOWN_FIELDS",
    "SUPPORTED_STAGES",
    "Pipeline",
    "compile_pipeline",
    "decode_stages",
    "encode_documents",
]
