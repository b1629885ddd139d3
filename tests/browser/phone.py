"""What a page must hold at phone width, measured in the browser itself."""

from __future__ import annotations

PHONE = {"width": 390, "height": 844}

# Everything visible that reaches past the right edge, and every table whose last column does.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const seen = (el) => {
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none") return false;
    const box = el.getBoundingClientRect();
    return box.width > 1 && box.height > 1;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.className && typeof el.className === "string" ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (!seen(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 || (box.left < -1 && box.right > 0))
      wide.push(name(el) + " " + Math.round(box.left) + ".." + Math.round(box.right));
  }
  const lastColumns = [];
  for (const table of document.querySelectorAll("main table")) {
    for (const row of table.querySelectorAll("tr")) {
      const last = row.lastElementChild;
      if (last && seen(last) && last.getBoundingClientRect().right > width + 1) lastColumns.push(name(table));
    }
  }
  return {width: width, scrollWidth: document.documentElement.scrollWidth, wide: wide.slice(0, 10),
          lastColumns: lastColumns.slice(0, 5)};
}"""


def assert_fits_phone(page) -> None:
    """Nothing wider than the screen, and every table's last column inside it."""
    measured = page.evaluate(OVERFLOW)
    assert measured["scrollWidth"] <= measured["width"], f"{page.url} scrolls sideways: {measured}"
    assert not measured["wide"], f"{page.url} has elements past the screen's edge: {measured['wide']}"
    assert not measured["lastColumns"], f"{page.url} hides a table's last column: {measured['lastColumns']}"
