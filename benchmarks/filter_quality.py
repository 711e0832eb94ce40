"""`python benchmarks/filter_quality.py ...`: runs `s2a.evaluation.filter_quality` (see its docstring)."""

from s2a.evaluation.filter_quality import main

if __name__ == "__main__":
    main()
