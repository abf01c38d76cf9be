"""LFSS: shared weights over groups (batched equals group by group), the channel scan's quirks, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fsad.methods.wave_mambaad.lfss import ChannelAdaptiveScan, ChannelScan


def test_groups_share_one_set_of_weights():
    torch.manual_seed(0)
    lfss = ChannelAdaptiveScan(channels=8, height=4, width=6, groups=2, d_state=4, scan_backend="chunked").double()
    ll = torch.randn(2, 8, 4, 6, dtype=torch.float64)
    x = lfss.conv(ll)
    parts = []
    for g in range(2):  # the definition, one group at a time
        xg = x[:, 4 * g:4 * (g + 1)]
        x1 = lfss.scan_h(xg.mean(dim=3)).unsqueeze(3) * xg
        x2 = lfss.scan_w(x1.mean(dim=2)).unsqueeze(2) * xg
        parts.append(lfss.group_proj(x2))
    torch.testing.assert_close(lfss(ll), lfss.proj(torch.cat(parts, dim=1)) + ll)


def test_channel_scan_matches_two_sequential_scans_with_the_codes_quirks():
    """The channel scan is its definition: a forward scan and a scan over the flipped tokens with their own
    parameters but the forward step bias and the unflipped gate (the released code), each normalised over the
    tokens and gated once more."""
    from fsad.layers.selective_scan import selective_scan

    torch.manual_seed(1)
    scan = ChannelScan(length=5, channels=3, d_state=2, scan_backend="chunked").double()
    u = torch.randn(2, 3, 5, dtype=torch.float64)
    x, z = scan.in_proj(u).chunk(2, dim=-1)
    x = scan.conv(x.unsqueeze(2)).squeeze(2).transpose(1, 2)
    z = z.transpose(1, 2)

    def one(xs, proj, dt_proj, a_log, d):
        dt, b_t, c_t = torch.split(proj(xs.transpose(1, 2)), [scan.dt_rank, 2, 2], dim=-1)
        return selective_scan(xs, F.linear(dt, dt_proj.weight).transpose(1, 2), -torch.exp(a_log),
                              b_t.transpose(1, 2), c_t.transpose(1, 2), d, z=z, delta_bias=scan.dt_proj.bias,
                              delta_softplus=True, backend="sequential")

    out_f = one(x, scan.x_proj, scan.dt_proj, scan.A_log, scan.D)
    out_b = one(x.flip(-1), scan.x_proj_b, scan.dt_proj_b, scan.A_b_log, scan.D_b)
    expected = scan.norm(out_f) * F.silu(z) + (scan.norm(out_b) * F.silu(z)).flip(-1)
    torch.testing.assert_close(scan(u), expected.transpose(1, 2), rtol=1e-10, atol=1e-10)


def test_gradients_in_float64():
    torch.manual_seed(2)
    lfss = ChannelAdaptiveScan(channels=4, height=2, width=2, groups=2, d_state=2, scan_backend="chunked").double()
    ll = torch.randn(1, 4, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lfss, (ll,))


def test_groups_must_divide_the_channels():
    with pytest.raises(ValueError, match="cannot be cut into 3 groups"):
        ChannelAdaptiveScan(channels=8, height=4, width=4, groups=3)
