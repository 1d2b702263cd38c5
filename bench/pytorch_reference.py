"""PyTorch reference for claimbench's train-step benches: the same models, written as a PyTorch
user would, timed on the same machine.

  transformer  bench/transformer_step_bench.ts: 2 layers, d 64, 4 heads of 16 (Hard-ALiBi windows
               1 and 2, two causal heads), MLP 256, vocab 30, untied head, 103,936 parameters,
               batch 32 x context 96, masked cross-entropy, AdamW (weight decay 0.1 on the
               matrices), gradient clipping at norm 1.
  cnn          bench/train_step_bench.ts: 6 dilated Conv1d layers (kernel 9, 64 channels,
               dilations 1,2,3,4,5,1) + GELU + residual, tied byte embedding, 237,952 parameters,
               batch 64 x 52, cross-entropy, AdamW (weight decay 0.01).
  mamba        bench/mamba_step_bench.ts: the selective-copying-ssm suite's Mamba arm, 2 Mamba
               blocks (d_model 32, expand 2, d_state 16, d_conv 4, dt_rank 2) with pre-LayerNorm
               residuals, a final LayerNorm and a tied head, vocab 10, batch 32 x 80, cross-entropy
               on the last 8 positions, Adam (no weight decay), clipping at norm 1. The scan is the
               plain sequential loop over L of selective_scan_ref, what a PyTorch user writes
               (over unbound slices: see selective_scan).

Random tokens stand in for the copy and selective-copy batches: a step's work does not depend on
the values. Timing is per step after 20 warm-up steps; the result line gives the mean, median
and fastest step and examples/s from the mean.

PyPI is unreachable on claimbench's machines, so PyTorch comes from Debian (bookworm ships 1.13.1).
Debian's build calls whatever BLAS the `libblas.so.3` alternative points to; the reference BLAS it
installs with is ~10x slower than an optimised one, so install one too. MKL (non-free) was the
fastest here; OpenBLAS (main) works with OPENBLAS_NUM_THREADS=1, or its threads fight PyTorch's:

  apt-get install python3-torch libopenblas0-pthread
  # or MKL: add the "non-free" component to the apt sources, then apt-get install libmkl-rt
  MKL_THREADING_LAYER=GNU /usr/bin/python3 bench/pytorch_reference.py --model transformer
"""

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    """Pre-LayerNorm block: x + attn(LN(x)), then + MLP(LN(x))."""

    def __init__(self, d, heads, mlp, bias):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, mlp), nn.Linear(mlp, d)
        self.register_buffer("bias", bias)  # [heads, T, T]: 0 where visible, -1e9 elsewhere

    def forward(self, x):
        B, T, C = x.shape
        hs = C // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=-1)
        q, k, v = (t.view(B, T, self.heads, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(hs)) + self.bias  # [B, H, T, T]
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class Transformer(nn.Module):
    def __init__(self, vocab=30, d=64, heads=4, layers=2, mlp=256, T=96, windows=(1, 2, None, None)):
        super().__init__()
        bias = torch.full((heads, T, T), -1e9)
        for h, m in enumerate(windows):
            for i in range(T):
                bias[h, i, 0 if m is None else max(0, i - m + 1) : i + 1] = 0
        self.wte = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads, mlp, bias) for _ in range(layers))
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.wte(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.lnf(x))


class DilatedCnn(nn.Module):
    def __init__(self, vocab=256, channels=64, kernel=9, dilations=(1, 2, 3, 4, 5, 1)):
        super().__init__()
        self.embed = nn.Embedding(vocab, channels)
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel, dilation=d, padding=(kernel - 1) // 2 * d)
            for d in dilations
        )

    def forward(self, ids):
        x = self.embed(ids).transpose(1, 2)  # [B, C, L]
        for conv in self.convs:
            x = x + F.gelu(conv(x))
        return x.transpose(1, 2) @ self.embed.weight.t()  # [B, L, vocab]


def selective_scan(u, delta, A, B, C, D, z, delta_bias):
    """The sequential selective scan: u, delta, z [B, D, L]; A [D, N]; B, C [B, N, L]."""
    delta = F.softplus(delta + delta_bias[None, :, None])
    decay = torch.exp(delta.unsqueeze(-1) * A[None, :, None, :])  # [B, D, L, N]
    drive = (delta * u).unsqueeze(-1) * B.transpose(1, 2).unsqueeze(1)  # [B, D, L, N]
    x = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    # unbind, not decay[:, :, i] as selective_scan_ref indexes: each indexed slice's backward
    # fills a whole [B, D, L, N] gradient, which made the step ~10 s here instead of ~0.1 s.
    for a, b, c in zip(decay.unbind(2), drive.unbind(2), C.unbind(2)):
        x = a * x + b
        ys.append((x * c[:, None, :]).sum(-1))
    y = torch.stack(ys, dim=2) + u * D[None, :, None]
    return y * F.silu(z)


class MambaBlock(nn.Module):
    def __init__(self, d=32, expand=2, n=16, d_conv=4, dt_rank=2):
        super().__init__()
        inner = expand * d
        self.n, self.dt_rank = n, dt_rank
        self.in_proj = nn.Linear(d, 2 * inner, bias=False)
        self.conv = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(inner, dt_rank + 2 * n, bias=False)
        self.dt_proj = nn.Linear(dt_rank, inner)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, n + 1).float()).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d, bias=False)

    def forward(self, h):
        L = h.shape[1]
        x, z = self.in_proj(h).chunk(2, dim=-1)
        x = F.silu(self.conv(x.transpose(1, 2))[..., :L])  # [B, inner, L]
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.n, self.n], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)
        y = selective_scan(
            x, delta, -torch.exp(self.A_log), B.transpose(1, 2), C.transpose(1, 2), self.D,
            z.transpose(1, 2), self.dt_proj.bias,
        )
        return self.out_proj(y.transpose(1, 2))


class MambaLm(nn.Module):
    def __init__(self, vocab=10, d=32, layers=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(layers))
        self.blocks = nn.ModuleList(MambaBlock(d) for _ in range(layers))
        self.norm = nn.LayerNorm(d)

    def forward(self, ids):
        x = self.embed(ids)
        for norm, block in zip(self.norms, self.blocks):
            x = x + block(norm(x))
        return self.norm(x) @ self.embed.weight.t()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["transformer", "cnn", "mamba"], default="transformer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.model == "transformer":
        B, T, V, weight_decay = 32, 96, 30, 0.1
        model = Transformer(T=T)
        mask = (torch.rand(B, T) < 0.5).float().view(-1)  # loss on the answer only
    elif args.model == "mamba":
        B, T, V, weight_decay = 32, 80, 10, 0.0
        model = MambaLm()
        mask = torch.zeros(B, T)
        mask[:, -8:] = 1  # the 8 answer tokens
        mask = mask.view(-1)
    else:
        B, T, V, weight_decay = 64, 52, 256, 0.01
        model = DilatedCnn()
        mask = torch.ones(B * T)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wte" not in n and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not any(p is q for q in decay)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=1e-3
    )
    ids, target = torch.randint(0, V, (B, T)), torch.randint(0, V, (B, T))

    def step():
        nll = F.cross_entropy(model(ids).reshape(-1, V), target.view(-1), reduction="none")
        loss = (nll * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(20):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    mean = sum(times) / len(times)
    params = sum(p.numel() for p in model.parameters())
    print(
        f"torch {torch.__version__}, {args.model}, {params} parameters, B {B} x {T}, {args.threads} threads: "
        f"mean {mean * 1e3:.1f} ms, median {times[len(times) // 2] * 1e3:.1f} ms, "
        f"fastest {times[0] * 1e3:.1f} ms, {B / mean:.0f} examples/s"
    )


if __name__ == "__main__":
    main()
