"""Training and the MLflow registry: scikit-learn + MLflow on data frames, never a database session.

- :mod:`retrain.registry`: log, register, alias, promote, roll back, load models and their references.
- :mod:`retrain.train`: the default (clone and refit) and custom ``"module:function"`` training recipes.
- :mod:`retrain.evaluate`: champion vs challenger on the most recent labeled rows; :mod:`retrain.paired`:
  the gate's paired test (McNemar exact, paired bootstrap); :mod:`retrain.baseline`: a holdout's baseline
  for the performance breach test.
- :mod:`retrain.post_change`: training data from a change point on.
- :mod:`retrain.task`: classification / regression from the model, the metric that fits it.
- :mod:`retrain.loop`: one gated retrain, end to end.
- :mod:`retrain.bootstrap`: the demo model; :mod:`retrain.synthetic`: the built-in data generator.
"""
