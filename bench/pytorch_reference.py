"""PyTorch reference for claimbench's train-step benches: the same models, written as a PyTorch
user would, timed on the same machine.

  transformer  bench/transformer_step_bench.ts: 2 layers, d 64, 4 heads of 16 (Hard-ALiBi windows
               1 and 2, two causal heads), MLP 256, vocab 30, untied head, 103,936 parameters,
               batch 32 x context 96, masked cross-entropy, AdamW (weight decay 0.1 on the
               matrices), gradient clipping at norm 1.
  cnn          bench/train_step_bench.ts: 6 dilated Conv1d layers (kernel 9, 64 channels,
               dilations 1,2,3,4,5,1) + GELU + residual, tied byte embedding, 237,952 parameters,
               batch 64 x 52, cross-entropy, AdamW (weight decay 0.01).

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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["transformer", "cnn"], default="transformer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.model == "transformer":
        B, T, V, weight_decay = 32, 96, 30, 0.1
        model = Transformer(T=T)
        mask = (torch.rand(B, T) < 0.5).float().view(-1)  # loss on the answer only
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
