"""The `reconciler` commands, one module per family, each imported only when its command runs.

`reconciler/cli.py` names every command and the module holding it, so `reconciler --version`
and `reconciler --help` import none of them: `common` (exit codes, the flags every command takes,
errors), `local` (validate, diff, simulate, test, tree), `servers` (run, settings, serve),
`cluster` (get, events, reconcile, suspend, resume, and tree against a cluster), `output` (the
one table/wide/json/yaml/name printer), `watching` (simulate --watch, progress on stderr).
"""
