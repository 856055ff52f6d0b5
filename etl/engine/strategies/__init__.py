"""Ways to do a phase's batches, each behind :class:`etl.engine.batches.Strategy`.

- :mod:`~etl.engine.strategies.range_rows`: read a source key range and the same
  range of the target, compare, write (range mode);
- :mod:`~etl.engine.strategies.text_copy`: fill an empty target range with SQL text
  the source writes, falling back to range rows;
- :mod:`~etl.engine.strategies.checksums`: let both servers summarise a range first and
  read only the rows whose hashes differ (range mode, same row hashing on both sides);
- :mod:`~etl.engine.strategies.buckets`: lookup mode with summaries: buckets of exact
  keys summed on both servers, only differing keys read and written;
- :mod:`~etl.engine.strategies.lookup`: look each source batch's keys up in the target,
  then sweep the target's keys for deletes (the sides order keys differently);
- :mod:`~etl.engine.strategies.incremental`: pages of rows changed since a watermark.
"""
