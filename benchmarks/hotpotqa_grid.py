"""`python benchmarks/hotpotqa_grid.py ...`: runs `s2a.evaluation.hotpotqa_grid` (see its docstring)."""

from s2a.evaluation.hotpotqa_grid import main

if __name__ == "__main__":
    main()
