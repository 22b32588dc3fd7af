"""Robustness reports of a trained policy: return against one or two knobs, and which knobs matter.

* :mod:`domrand.reports.runs`: find the policy and training spec of any run directory;
* :mod:`domrand.reports.batch`: evaluate many exact domains in one vector env;
* :mod:`domrand.reports.sweep`: ``domrand sweep`` (a curve or a heat map);
* :mod:`domrand.reports.sensitivity`: ``domrand sensitivity`` (Sobol' or Morris via SALib);
* :mod:`domrand.reports.plotting`: their PNG figures.
"""
