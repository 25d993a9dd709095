"""Gating templates (GatingML 2.0, FlowJo .wsp) evaluated as whole trees in NumPy kernels."""
