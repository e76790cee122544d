// The editor's dialogs: save a new version and the keyboard shortcuts (RunDialog.jsx starts a run).
import { useState } from "react";
import { Dialog } from "./dialogs.jsx";
export { RunDialog } from "./RunDialog.jsx";

export function SaveDialog({ onClose, onSave, valid }) {
  const [note, setNote] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title="Save as a new version" onClose={onClose} actions={<>
      <button type="button" className="secondary" onClick={onClose}>Cancel</button>
      <button type="button" disabled={busy} onClick={async () => { setBusy(true); const ok = await onSave(note); setBusy(false); if (ok) onClose(); }}>Save version</button></>}>
      {!valid ? <p className="warn-text">The workflow has problems; saving will fail until they are fixed.</p> : null}
      <label htmlFor="save-note">Note</label>
      <input id="save-note" type="text" value={note} onChange={(e) => setNote(e.target.value)} placeholder="What changed?" />
    </Dialog>
  );
}

export function KeysDialog({ onClose }) {
  const keys = [
    ["Ctrl+Z", "Undo"], ["Ctrl+Shift+Z / Ctrl+Y", "Redo"], ["Ctrl+C / Ctrl+V", "Copy / paste selected nodes"],
    ["Delete / Backspace", "Delete selected nodes and edges"], ["Ctrl+S", "Save as a new version"],
    ["Shift+L", "Auto-layout"], ["Tab, Enter", "Move between nodes and select one (canvas)"],
    ["Arrow keys", "Move the selected node"], ["?", "This list"],
  ];
  return (
    <Dialog title="Keyboard shortcuts" onClose={onClose} actions={<button type="button" onClick={onClose}>Close</button>}>
      <table className="list compact"><tbody>
        {keys.map(([k, what]) => <tr key={k}><td><span className="kbd">{k}</span></td><td>{what}</td></tr>)}
      </tbody></table>
    </Dialog>
  );
}
