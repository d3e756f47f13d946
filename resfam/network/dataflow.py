"""What the inference rewrites (:mod:`.onednn`, :mod:`.elementwise`) need to know about a value
in a traced graph before they write a result into it: that no other value shares its memory
(fresh) and that nothing reads it later (dead)."""
from __future__ import annotations

from torch import fx, nn

FRESH = (nn.MaxPool2d, nn.AvgPool2d, nn.Conv2d)  # modules whose output is a new tensor


def drop_identities(model: fx.GraphModule, modules: dict) -> None:
    """``nn.Identity`` nodes (drop path and attention left out, at inference) bypassed, so a
    value's consumer is the op that really follows it."""
    for node in list(model.graph.nodes):
        if node.op == "call_module" and type(modules.get(node.target)) is nn.Identity:
            node.replace_all_uses_with(node.args[0])
            model.graph.erase_node(node)


def fresh(node, modules: dict, depth: int = 4) -> bool:
    """``node``'s value is a tensor no other node's value shares (so it may be written over once
    it is dead): a convolution's or pool's output, the output of a module or function marked
    ``fresh_output`` (a packed convolution, a fused merge), or an in-place ReLU of such a value."""
    if not isinstance(node, fx.Node) or depth == 0:
        return False
    if node.op == "call_function":
        return getattr(node.target, "fresh_output", False) is True
    if node.op != "call_module":
        return False
    module = modules.get(node.target)
    if isinstance(module, FRESH) or getattr(module, "fresh_output", False) is True:
        return True
    return (type(module) is nn.ReLU and len(node.args) == 1 and len(node.args[0].users) == 1
            and fresh(node.args[0], modules, depth - 1))


def dead_after(value: fx.Node, node: fx.Node) -> bool:
    """Every other use of ``value`` comes before ``node`` in the graph's order."""
    order = {n: i for i, n in enumerate(node.graph.nodes)}
    return all(order[u] < order[node] for u in value.users if u is not node)


def single_user(node: fx.Node):
    users = list(node.users)
    return users[0] if len(users) == 1 else None
