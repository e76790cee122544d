// The node palette: one button per node type, dragged onto the canvas or pressed to add a node.
export function Palette({ types, onAdd }) {
  return (
    <nav className="palette" aria-label="Node palette">
      <h2>Nodes</h2>
      <p className="muted" style={{ fontSize: 11 }}>Drag onto the canvas, or press Enter to add.</p>
      {types.map((t) => (
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
