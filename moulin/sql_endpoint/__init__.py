"""moulin's SQL endpoint: Spark's Thrift JDBC/ODBC server over the catalog of ``moulin sql``.

BI tools, Beeline and Python (DB-API) query the warehouse's tables by name
(``gold.flight_features``) over the HiveServer2 protocol.  The pieces:

* :mod:`~moulin.sql_endpoint.server` - the driver process: Spark session, query guard, Thrift server;
* :mod:`~moulin.sql_endpoint.sync` - keeps the Spark catalog in step with the Delta logs;
* :mod:`~moulin.sql_endpoint.ddl` - the SQL of snapshot tables (exact file lists) and views;
* :mod:`~moulin.sql_endpoint.users` - users, passwords, readers;
* :mod:`~moulin.sql_endpoint.jar` - compiles the Java classes (password check, query guard);
* :mod:`~moulin.sql_endpoint.client` - PyHive connections and Beeline command lines;
* :mod:`~moulin.sql_endpoint.cli` - ``moulin sql-endpoint``.

The user guide is ``docs/guides/sql-endpoint.md``.
"""
