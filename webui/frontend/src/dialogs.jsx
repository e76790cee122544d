// Modal dialogs on the native <dialog> element: focus is trapped, Escape closes.
import { useEffect, useRef } from "react";

export function Dialog({ title, children, onClose, actions, label }) {
  const ref = useRef(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => {
      if (d && d.open) d.close();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      className="wdialog"
      aria-label={label || title}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      <h2>{title}</h2>
      <div className="wdialog-body">{children}</div>
      <div className="wdialog-actions">{actions}</div>
    </dialog>
  );
}

// A validation message with its `quoted` names (fields, nodes, values) set as code.
export function Ticks({ text }) {
  const parts = String(text ?? "").split(/`([^`]+)`/);
  return parts.map((part, i) => (i % 2 ? <code key={i}>{part}</code> : part));
}

// A node's validation message without its "node `id`: " lead (shown on that node or beside its field).
export function withoutNode(message, id) {
  const lead = `node \`${id}\`: `;
  return String(message ?? "").startsWith(lead) ? message.slice(lead.length) : message;
}

export function JsonView({ value, label }) {
  if (value === undefined || value === null) return <p className="muted">None.</p>;
  const text = JSON.stringify(value, null, 2);
  return (
    <pre className="json" aria-label={label} tabIndex={0}>
      {text}
    </pre>
  );
}
