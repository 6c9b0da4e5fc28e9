"""PyTorch as a benchmark peer, speaking the line protocol of bench/peers/peer-process.ts.

Paths (one process may serve several):
  alloc     what PyTorch users call: torch.nn.functional.batch_norm, which allocates its outputs,
            and autograd for the backward
  prealloc  outputs preallocated where PyTorch 1.13 can: native_batch_norm_backward.out; the
            forward has no CPU .out variant in 1.13 (native_batch_norm.out is registered for the
            Meta backend only), so it allocates, and the bench runs this path in a process whose
            malloc never returns pages to the system (torch-nommap)
  layer     nn.BatchNorm1d/2d in training mode: forward, then backward(dy)
Each call is timed here, so the pipe is not; the reply carries the milliseconds.
"""
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MOMENTUM = 0.1


def load_inputs(path, dims, layout):
    """x, dy, gamma, beta, running mean, running var from the bench's file of raw float32.

    dims are N, C, spatial...; channels-last data becomes an NCHW view with channels_last
    strides, as a PyTorch user holds it."""
    n, c = int(np.prod(dims)), dims[1]
    raw = np.fromfile(path, dtype=np.float32)
    parts, at = [], 0
    for size in (n, n, c, c, c, c):
        parts.append(torch.from_numpy(raw[at:at + size]))
        at += size
    x, dy, gamma, beta, mean, var = parts
    if layout == "nhwc":
        spatial = dims[2:]
        memory_shape = [dims[0], *spatial, dims[1]]
        to_nchw = [0, len(memory_shape) - 1, *range(1, len(memory_shape) - 1)]
        x, dy = (t.reshape(memory_shape).permute(to_nchw) for t in (x, dy))
    else:
        x, dy = x.reshape(dims), dy.reshape(dims)
    return x, dy, gamma, beta, mean, var


def in_memory_order(t, layout):
    """t as the bench stores it (channels-last data back to N, spatial..., C)."""
    if layout == "nhwc":
        t = t.permute([0, *range(2, t.dim()), 1])
    return t.contiguous().numpy()


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def functional_cell(path, op, x, dy, gamma, beta, mean, var, eps):
    """(call, output) for the alloc and prealloc paths."""
    if op == "forwardInference":
        return lambda: F.batch_norm(x, mean, var, gamma, beta, False, MOMENTUM, eps), lambda y: y
    if path == "alloc":
        if op == "forwardTrain":
            return lambda: F.batch_norm(x, None, None, gamma, beta, True, MOMENTUM, eps), lambda y: y
        xg, wg, bg = leaf(x), leaf(gamma), leaf(beta)
        if op == "backward":
            y = F.batch_norm(xg, None, None, wg, bg, True, MOMENTUM, eps)
            return lambda: torch.autograd.grad(y, (xg, wg, bg), dy, retain_graph=True), lambda g: g[0]

        def step():
            y = F.batch_norm(xg, None, None, wg, bg, True, MOMENTUM, eps)
            return torch.autograd.grad(y, (xg, wg, bg), dy)

        return step, lambda g: g[0]
    # prealloc
    forward = lambda: torch.native_batch_norm(x, gamma, beta, None, None, True, MOMENTUM, eps)
    if op == "forwardTrain":
        return forward, lambda r: r[0]
    _, save_mean, save_invstd = forward()
    dx, dgamma, dbeta = torch.empty_like(x), torch.empty_like(gamma), torch.empty_like(beta)

    def backward(m, s):
        return torch.ops.aten.native_batch_norm_backward.out(
            dy, x, gamma, None, None, m, s, True, eps, [True, True, True], out0=dx, out1=dgamma, out2=dbeta)

    if op == "backward":
        return lambda: backward(save_mean, save_invstd), lambda r: r[0]

    def step():
        _, m, s = forward()
        return backward(m, s)

    return step, lambda r: r[0]


def layer_cell(op, x, dy, gamma, beta, eps, dims):
    if op != "trainStep":
        raise ValueError("the layer path is a training step (forward + backward)")
    layer = (torch.nn.BatchNorm1d if len(dims) < 4 else torch.nn.BatchNorm2d if len(dims) == 4 else torch.nn.BatchNorm3d)(
        dims[1], eps=eps, momentum=MOMENTUM)
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
    xg = leaf(x)

    def step():
        xg.grad = None  # the previous step's dx is dropped, as a training loop drops it
        layer(xg).backward(dy)
        return xg.grad

    return step, lambda dx: dx


class Cell:
    def __init__(self, path, op, layout, threads, eps, data, dims):
        self.layout, self.threads = layout, threads
        torch.set_num_threads(threads)
        x, dy, gamma, beta, mean, var = load_inputs(data, dims, layout)
        if path == "layer":
            self.call, self.output = layer_cell(op, x, dy, gamma, beta, eps, dims)
        elif path in ("alloc", "prealloc"):
            self.call, self.output = functional_cell(path, op, x, dy, gamma, beta, mean, var, eps)
        else:
            raise ValueError(f"unknown path {path}")
        self.last = None

    def run(self, untimed=0):
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        for _ in range(untimed):
            self.call()
        start = time.perf_counter_ns()
        self.last = self.call()
        return (time.perf_counter_ns() - start) / 1e6

    def save(self, file):
        in_memory_order(self.output(self.last), self.layout).tofile(file)


def main():
    cells = {}
    print(f"ready torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            cmd, cell_id, args = words[0], words[1], words[2:]
            if cmd == "setup":
                path, op, layout, threads, eps, data, dims = args
                cells[cell_id] = Cell(path, op, layout, int(threads), float(eps), data, [int(d) for d in dims.split("x")])
                reply = "ok"
            elif cmd == "run":
                reply = f"ok {cells[cell_id].run(int(args[0]) if args else 0)!r}"
            elif cmd == "save":
                cells[cell_id].save(args[0])
                reply = "ok"
            elif cmd == "free":
                cells.pop(cell_id, None)
                reply = "ok"
            else:
                reply = f"error unknown command {cmd}"
        except Exception as e:  # reported to the bench, which marks the cell as an error
            reply = f"error {type(e).__name__}: {e}".replace("\n", " ")
        print(reply, flush=True)


if __name__ == "__main__":
    main()
