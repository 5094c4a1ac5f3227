"""The study: params.yaml's profiles, variants and runs, the files each stage writes, the ablation's claims
and their statistics, and the notebooks' figures."""
