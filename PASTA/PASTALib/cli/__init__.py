"""The ``pasta`` command line: one module per command, :class:`.command.Command` in its own module,
and :mod:`.main` (parser, logging, exit codes), which finds the commands by module name so that no
command module is imported back by the registry and synthesis and training stay optional layers."""
