"""The platform\x27s services on one machine: PostgreSQL, Airflow, HDFS, Spark (``moulin platform``)."""
