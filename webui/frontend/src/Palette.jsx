// The node palette: a search box filtering the node types by name, label and description as you type (Enter
// adds the first, best match), and one button per node type, dragged onto the canvas or pressed to add a node.
import { useState } from "react";

// The types matching every word of ``query`` (in the name, label or description), those whose name or label
// matches first (exactly, then at the start, then anywhere), then those only the description does.
export function matchTypes(types, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return types;
  const rank = (t) => {
    const name = t.name.toLowerCase();
    const label = (t.label || "").toLowerCase();
    const q = words.join(" ");
    if (name === q || label === q) return 0;
    if (name.startsWith(q) || label.startsWith(q)) return 1;
    if (words.every((w) => name.includes(w) || label.includes(w))) return 2;
    return 3;
  };
  return types
    .filter((t) => {
      const text = `${t.name} ${t.label || ""} ${t.description || ""}`.toLowerCase();
      return words.every((w) => text.includes(w));
    })
    .map((t, i) => [rank(t), i, t])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, , t]) => t);
}

export function Palette({ types, onAdd }) {
  const [query, setQuery] = useState("");
  const shown = matchTypes(types, query);
  const add = (name) => {
    onAdd(name);
    setQuery("");
  };
  return (
    <nav className="palette" aria-label="Node palette">
      <h2>Nodes</h2>
      <input type="search" className="palette-search" aria-label="Search node types" placeholder="Search…"
        aria-describedby="palette-search-result" value={query} onChange={(e) => setQuery(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && query.trim() && shown.length) {
            e.preventDefault();
            add(shown[0].name);
          } else if (e.key === "Escape" && query) {
            e.preventDefault();
            setQuery("");
          }
        }} />
      <p className="muted" id="palette-search-result" role="status" style={{ fontSize: 11 }}>
        {!query.trim() ? "Drag onto the canvas, or press Enter to add."
          : shown.length ? `${shown.length} of ${types.length}; Enter adds ${shown[0].label || shown[0].name}.`
            : `No node type matches “${query.trim()}”.`}
      </p>
      {shown.map((t) => (
        <button key={t.name} type="button" className="palette-item" draggable data-node-type={t.name}
          title={t.description}
          onDragStart={(e) => {
            e.dataTransfer.setData("application/weft-node-type", t.name);
            e.dataTransfer.effectAllowed = "move";
          }}
          onClick={() => onAdd(t.name)}>
          {t.label}<small>{t.name} · {t.default_queue}</small>
        </button>
      ))}
    </nav>
  );
}
