"""Each pipeline stage as one function, a module per stage (so a stage depends only on the code it runs): it
reads the study's settings, computes, and writes every file through `hgstudy.study.files`. The notebooks call
these and show what they return; the notebook tests call them at the CI sizes (`overrides=None`), so CI runs the
code the pipeline runs.
"""
