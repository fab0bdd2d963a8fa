"""The commands: each runs trials (through `study`), analyses them (through `analysis`) and renders (through
`report`); one module per command, plus the sequential runner (`until`). No command calls another's function."""
