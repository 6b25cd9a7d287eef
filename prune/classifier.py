"""Which layer gives a model's logits, found by tracing one forward pass: a Linear or a 1x1 convolution."""

from __future__ import annotations

from collections import deque

import torch
from torch import nn
from torch.autograd.graph import Node

from prune.errors import UsageError

WEIGHTED = (nn.Conv2d, nn.Linear)  # the layer kinds that are pruned, and that may be the classifier


def find_classifier(model: nn.Module, example: torch.Tensor, label: str = "model") -> str:
    """The name of the Conv2d or Linear whose output the logits come from: walking the autograd graph back
    from the logits of one forward pass of `example`, the first such layer's output met (only activations,
    pooling, reshapes and the like lie between, as after SqueezeNet's final 1x1 convolution)."""
    outputs: dict[Node, str] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(output, torch.Tensor) and output.grad_fn is not None:
                outputs.setdefault(output.grad_fn, name)

        return hook

    hooks = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if isinstance(m, WEIGHTED)]
    training = model.training
    try:
        with torch.enable_grad():
            logits = model.eval()(example.detach().requires_grad_())
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    name = _nearest(logits.grad_fn, outputs) if isinstance(logits, torch.Tensor) else None
    if name is None:
        raise UsageError(f"{label}: no Conv2d or Linear layer produces the logits, so no classifier to keep "
                         "dense")
    return name


def _nearest(start: Node | None, outputs: dict[Node, str]) -> str | None:
    """The name of the recorded layer output nearest `start`, breadth first through the autograd graph."""
    queue, seen = deque([start]), set()
    while queue:
        node = queue.popleft()
        if node is None or node in seen:
            continue
        if node in outputs:
            return outputs[node]
        seen.add(node)
        queue.extend(child for child, _ in node.next_functions)
    return None
