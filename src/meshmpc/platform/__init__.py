"""The platform node: database, REST API, grants and approvals, audit log, users and roles."""
