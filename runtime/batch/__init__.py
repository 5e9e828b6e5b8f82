"""Batch work over logged requests: routing (router eval, simulate --router-only) and labelling.

Inputs are cut into shards (byte ranges of JSONL, row groups of Parquet, whole compressed files);
each shard is processed by one worker that holds the model, writes its rows to one Parquet part
and its counts to one tally file, both renamed into place when complete. A run therefore resumes
where it was killed (finished shards are skipped), and the driver's memory holds tallies only,
whatever the input's size. Shards run on Ray Data (`pip install "slmkit[batch]"`, local Ray or
`--ray-address`), or one after another in this process when Ray is not installed.
"""
