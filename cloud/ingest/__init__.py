"""Ingest logic shared by the gRPC server and the simulator (no transport imports).

``convert`` turns Viam's upload messages into domain records; ``direct`` serves
Viam's one-shot upload RPCs; ``resumable`` is Ferry's exactly-once resumable
upload protocol; ``materialize`` turns a finished upload into stored readings.
"""
