"""The pieces of bench/compare.py: processes, wrk, models, servers, peers and the report."""
