"""Training of classifier heads without torch: minibatch plans and a batched numpy trainer.

``batching`` (numpy only) draws the minibatch order every trainer uses; ``numpy_trainer`` trains
one head, or many robots' heads stacked in one batched call, numerically equal to
:class:`gossip_learning.learner.TorchTrainer`.
"""
