"""Personal data: keyed pseudonyms, masking, erasure with an on-disk proof, retention,
HDFS access zones, the audit trail and the record of processing activities."""
