"""Config from the cloud: a robot whose bootstrap config says ``"config_source": "cloud"``.

The robot fetches its merged config (its part config plus fragments, merged by
``ferry cloud``) at start-up, watches it over a server stream, applies each
change through the agent's live-reconfigure path, caches the last good one on
disk so it starts with no network, and reports what it runs (or refused, and
why) back to the cloud. See docs/fleet-config.md.
"""
