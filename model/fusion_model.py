"""Text + tabular cross-attention fusion model (TorchScript-able).

forward(input_ids [B,L] int64, attention_mask [B,L] int64 (1 real, 0 pad),
        features [B,F] float32 RAW values, need_weights: bool)
  -> (probs [B,2], text_to_tab [B,heads,L,F], tab_to_text [B,heads,F,L])
With need_weights False both attention outputs are empty tensors.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor, nn

class EncoderLayer(nn.Module):
    """Post-LN Transformer encoder layer, written out (not
    nn.TransformerEncoderLayer) so no nested-tensor fast path changes the
    numbers between LibTorch 1.13 and 2.x or CPU and CUDA."""

    def __init__(self, hidden: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(hidden, heads, dropout=dropout,
                                               batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn, hidden))
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, padding: Tensor) -> Tensor:
        attn, _ = self.self_attn(x, x, x, key_padding_mask=padding, need_weights=False)
        x = self.norm1(x + self.dropout(attn))
        return self.norm2(x + self.dropout(self.ffn(x)))


class TextEncoder(nn.Module):
    def __init__(self, vocab_size: int, max_tokens: int, hidden: int, heads: int,
                 ffn: int, layers: int, dropout: float):
        super().__init__()
        self.token = nn.Embedding(vocab_size, hidden, padding_idx=0)
        self.position = nn.Embedding(max_tokens, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            [EncoderLayer(hidden, heads, ffn, dropout) for _ in range(layers)])

    def forward(self, input_ids: Tensor, padding: Tensor) -> Tensor:
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        x = self.dropout(self.norm(self.token(input_ids) + self.position(positions)))
        for layer in self.layers:
            x = layer(x, padding)
        return x


class TabularEncoder(nn.Module):
    """One token per feature: z_f * W_f + b_f, z_f standardised inside the
    model, so model.pt takes raw values and the statistics travel with it."""

    def __init__(self, num_features: int, hidden: int):
        super().__init__()
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        self.weight = nn.Parameter(torch.randn(num_features, hidden))
        self.bias = nn.Parameter(torch.randn(num_features, hidden))
        self.norm = nn.LayerNorm(hidden)
        # Standardised values are clipped, so a wild raw value (a typo'd
        # amount) stays in the range the model saw in training.
        self.z_clip = 8.0

    def forward(self, features: Tensor) -> Tensor:
        z = ((features - self.feature_mean) / self.feature_std).clamp(-self.z_clip,
                                                                      self.z_clip)
        return self.norm(z.unsqueeze(-1) * self.weight + self.bias)


class FusionModel(nn.Module):
    def __init__(self, vocab_size: int, num_features: int, max_tokens: int = 128,
                 hidden: int = 128, heads: int = 4, ffn: int = 256, layers: int = 2,
                 dropout: float = 0.1, num_classes: int = 2):
        super().__init__()
        self.text_encoder = TextEncoder(vocab_size, max_tokens, hidden, heads, ffn,
                                        layers, dropout)
        self.tab_encoder = TabularEncoder(num_features, hidden)
        # No dropout inside the fusion attention: its weights are an output.
        self.text_to_tab = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.tab_to_text = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.text_norm = nn.LayerNorm(hidden)
        self.tab_norm = nn.LayerNorm(hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(),
                                  nn.Dropout(dropout), nn.Linear(hidden, num_classes))

    def logits(self, input_ids: Tensor, attention_mask: Tensor, features: Tensor,
               need_weights: bool) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
        padding = attention_mask == 0
        real = attention_mask.to(features.dtype)
        text = self.text_encoder(input_ids, padding)
        tab = self.tab_encoder(features)

        update, text_to_tab = self.text_to_tab(text, tab, tab, need_weights=need_weights,
                                               average_attn_weights=False)
        text = self.text_norm(text + self.dropout(update))
        update, tab_to_text = self.tab_to_text(tab, text, text, key_padding_mask=padding,
                                               need_weights=need_weights,
                                               average_attn_weights=False)
        tab = self.tab_norm(tab + self.dropout(update))

        text_vec = (text * real.unsqueeze(-1)).sum(1) / real.sum(1, keepdim=True).clamp_min(1.0)
        pooled = torch.cat([text_vec, tab.mean(1)], dim=1)
        if text_to_tab is not None:
            # Padding queries still attend; zero them so padding carries no weight.
            text_to_tab = text_to_tab * real[:, None, :, None]
        return self.head(pooled), text_to_tab, tab_to_text

    def forward(self, input_ids: Tensor, attention_mask: Tensor, features: Tensor,
                need_weights: bool) -> Tuple[Tensor, Tensor, Tensor]:
        logits, text_to_tab, tab_to_text = self.logits(input_ids, attention_mask,
                                                       features, need_weights)
        probs = torch.softmax(logits, dim=-1)
        if need_weights and text_to_tab is not None and tab_to_text is not None:
            return probs, text_to_tab, tab_to_text
        empty = torch.empty([0], dtype=probs.dtype, device=probs.device)
        return probs, empty, empty
