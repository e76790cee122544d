// The workflow list page (server-rendered): each row's Run button opens the Run dialog with the
// form from that workflow's input schema.
import { createRoot } from "react-dom/client";
import { get } from "./api.js";
import { RunDialog } from "./RunDialog.jsx";

export function workflowListRunButtons() {
  const host = document.createElement("div");
  document.body.appendChild(host);
  const root = createRoot(host);
  const close = () => root.render(null);
  document.querySelectorAll("button[data-run-workflow]:not([data-no-role])").forEach((button) => {
    button.disabled = false;
    button.addEventListener("click", async () => {
      const slug = button.dataset.runWorkflow;
      button.disabled = true;
      try {
        const wf = await get(`/api/workflows/${encodeURIComponent(slug)}/`);
        const schema = wf.current_version?.definition?.inputs || null;
        root.render(<RunDialog key={`${slug}-${Date.now()}`} slug={slug} schema={schema} onClose={close} />);
      } catch (err) {
        window.alert(`Cannot start ${slug}: ${err.message}`);
      } finally {
        button.disabled = false;
      }
    });
  });
}
