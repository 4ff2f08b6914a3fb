"""The join page's colours, measured from its computed styles in light and dark mode: the
focus ring keeps 3:1 against what surrounds it on every control the keyboard reaches (WCAG's
minimum for a non-text indicator), and the text keeps 4.5:1 on its background."""

from __future__ import annotations

import pytest

from edge_sfu.client import connect
from tests.support.browser import chromium, join_now, open_page, require_chromium
from tests.support.sfu import running_sfu

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: WCAG 2 contrast of colours as computed styles give them, backgrounds composited upwards.
CONTRAST_JS = """
window.contrastOf = (() => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]*)\\)/.exec(c);
    if (!m) throw new Error('not an rgb colour: ' + c);
    const [r, g, b, a = 1] = m[1].split(/[\\s,/]+/).filter(Boolean).map(Number);
    return [r, g, b, a];
  };
  const over = (top, bottom) =>
    [0, 1, 2].map((i) => top[i] * top[3] + bottom[i] * (1 - top[3])).concat(1);
  // What is painted behind an element: its own and its ancestors' backgrounds, composited.
  const backdrop = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    const opaque = layers.length && layers[layers.length - 1][3] >= 1;
    let color = opaque ? layers.pop() : [255, 255, 255, 1];
    while (layers.length) color = over(layers.pop(), color);
    return color;
  };
  const luminance = ([r, g, b]) => {
    const lin = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const ratio = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const label = (el) => el.id || el.className || el.tagName;
  return {
    // The focused element's ring (drawn outside it) against what is behind the element.
    ring: () => {
      const el = document.activeElement;
      const cs = getComputedStyle(el);
      const behind = backdrop(el.parentElement);
      return { label: label(el), style: cs.outlineStyle, width: parseFloat(cs.outlineWidth),
        ratio: ratio(over(parse(cs.outlineColor), behind), behind) };
    },
    // Each shown element's text colour against its background.
    text: (selector) => [...document.querySelectorAll(selector)]
      .filter((el) => el.checkVisibility() && el.textContent.trim())
      .map((el) => {
        const behind = backdrop(el);
        const fg = over(parse(getComputedStyle(el).color), behind);
        return { label: label(el), ratio: ratio(fg, behind) };
      }),
  };
})();
"""
TEXT = (
    "header h1, #status, #room-name, label, legend, #join-button, #preview-off, #mic, #camera, "
    "#share, #view, #chat-toggle, #people-toggle, #settings-toggle, #leave, #count, "
    ".tile .name, .badges > span, #chat-log .who, #chat-log time, #chat-log .text, "
    "#people-list li, #panel-title, #page-label, #left-text, #rejoin"
)


async def _rings(page) -> list[dict]:
    """Tab through the page once (until the focus comes round again); each stop's ring."""
    await page.evaluate(CONTRAST_JS)
    seen: list[dict] = []
    for _ in range(60):
        await page.keyboard.press("Tab")
        ring = await page.evaluate("() => window.contrastOf.ring()")
        if ring["label"] == "BODY":
            continue
        if seen and ring == seen[0]:
            break
        seen.append(ring)
    return seen


async def _text(page) -> list[dict]:
    await page.evaluate(CONTRAST_JS)
    return await page.evaluate(f"() => window.contrastOf.text({TEXT!r})")


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_focus_ring_and_text_contrast(tmp_path, scheme: str) -> None:
    require_chromium()
    async with running_sfu(tmp_path) as sfu, chromium() as browser:
        bob = await connect(sfu.ws_url, sfu.token("bob"))
        try:
            page = await open_page(
                browser,
                f"{sfu.base}/join/room1?token={sfu.token('ann')}",
                bypass_csp=True,
                color_scheme=scheme,
            )
            await page.locator("#join-button").wait_for()
            checked: list[dict] = []
            # Before joining, then in the call (a remote tile, its pin, the chat panel).
            for stage in ("prejoin", "call"):
                if stage == "call":
                    await join_now(page)
                    await page.locator(".tile:not(.local)").wait_for()
                    await page.click("#mic")  # a pressed button's colours too
                    await page.click("#chat-toggle")
                    await page.fill("#chat-input", "hello")
                    await page.press("#chat-input", "Enter")
                    await page.locator("#chat-log time").wait_for()
                    await page.locator("body").click(position={"x": 5, "y": 5})
                rings = await _rings(page)
                assert len(rings) >= 5, rings
                if stage == "call":
                    assert any(r["label"] == "pin" for r in rings), rings
                for ring in rings:
                    assert ring["style"] == "solid" and ring["width"] >= 2, ring
                    assert ring["ratio"] >= 3, (scheme, stage, ring)
                texts = await _text(page)
                assert len(texts) >= 5, texts
                for text in texts:
                    assert text["ratio"] >= 4.5, (scheme, stage, text)
                checked += rings + texts
            assert checked
        finally:
            await bob.close()
