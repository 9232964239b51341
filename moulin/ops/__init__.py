"""Operations: alerts, HDFS health (``ops/*`` tables)."""
