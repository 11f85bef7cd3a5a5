"""The axis work: sample caches, fitting and teaching axes, discovering directions, reports.

:mod:`.sampling` (render and label seeded latents into a sample cache), :mod:`.workflow`
(fit a bundle from a cache, add an axis from labels), :mod:`.teaching` (an axis from a few
marked faces), :mod:`.discovery` (unsupervised directions and what they move),
:mod:`.axis_report` and :mod:`.discovery_report` (``tlgan axes report``) and
:mod:`.bundle_store` (where bundles ship, and loading one that fits the models). The maths
is in the ``axes`` package; these modules run the models and write the results.
"""
