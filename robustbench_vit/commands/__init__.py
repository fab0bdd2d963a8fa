"""The commands: each runs trials (through `study`), analyses them (through `analysis`) and renders (through
`report`); one module per command, each with one entry `main(args)` that builds its typed request, plus the
sequential runner (`until`) and what several commands share (`common`). No command imports another."""
