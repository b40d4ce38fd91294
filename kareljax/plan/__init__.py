"""Ahead-of-time plans: every jitted stage of a run compiled for TPU slices and NVIDIA GPUs that
this host does not have, with memory, FLOPs and roofline times (`kareljax plan`).

    rows = plan.run(config, ["v4-8", "h100"])

`targets` names the hardware and builds its (compile-only) devices, `stages` builds each stage's
jitted function and abstract arguments on a mesh of those devices, `compile` compiles them and
reads XLA's analyses, `flops` holds the formulas used where XLA cannot count, and `run` puts it
together with the settings that make a stage fit.
"""
