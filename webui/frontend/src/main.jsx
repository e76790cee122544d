// The one bundle: reads the page's json_script props and mounts what the page needs.
import "@xyflow/react/dist/style.css";
import "./island.css";
import { createRoot } from "react-dom/client";
import { liveQueues, liveRuns } from "./pages.js";
import { RunView } from "./RunView.jsx";
import { workflowListRunButtons } from "./WorkflowList.jsx";

const props = JSON.parse(document.getElementById("weft-props")?.textContent || "{}");
const mount = document.getElementById("weft-island");

if (props.mode === "run" && mount) {
  createRoot(mount).render(<RunView props={props} />);
} else if (props.mode === "editor" && mount) {
  import("./Editor.jsx").then(({ Editor }) => createRoot(mount).render(<Editor props={props} />));
} else if (props.mode === "runs") {
  liveRuns();
} else if (props.mode === "workflows") {
  workflowListRunButtons();
} else if (props.mode === "queues") {
  liveQueues();
} else if (props.mode === "limits") {
  liveQueues("limit-rows");
} else if (props.mode === "credentials" && mount) {
  import("./Credentials.jsx").then(({ Credentials }) => createRoot(mount).render(<Credentials props={props} />));
} else if (props.mode === "triggers") {
  import("./schedules.js").then(({ schedulesSection }) => schedulesSection());
}
