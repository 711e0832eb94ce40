"""`python benchmarks/load_local_server.py ...`: runs `s2a.local.load` (see its docstring)."""

from s2a.local.load import main

if __name__ == "__main__":
    main()
