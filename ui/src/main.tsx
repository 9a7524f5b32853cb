import { render } from "preact";
import { App } from "./app";
import { connection } from "./lib/connection";
import "./lib/theme";
import "./styles.css";

// Open the tab's one WebSocket before the first page asks for a topic.
const live = connection();
// The connection's counters, for the end-to-end tests and the curious (devtools).
(window as unknown as { tidewatch: object }).tidewatch = { stats: live.stats };
render(<App />, document.getElementById("app")!);
