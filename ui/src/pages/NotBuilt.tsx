import { useEffect } from "preact/hooks";
import { Card, Empty } from "../components/common";
import { formatCompact, formatDateTime } from "../lib/format";
import { streams } from "../lib/streams";
import type { PageProps } from "./registry";

/** The page of a domain that this server does not have yet: it says so, plainly. */
export function notBuiltPage(title: string, prefix: string) {
  return function NotBuilt(_props: PageProps) {
    useEffect(() => streams.use(), []);
    const own = (streams.streams.value ?? []).filter((stream) => stream.name.startsWith(prefix));
    return (
      <div class="not-built" data-testid="not-built">
        <Card title={`${title}: not built yet`}>
          <p>
            This domain has no analytics in Tidewatch yet: no generator, rollups or detectors feed it, so there is nothing to show here. It arrives with its own issue, built on the same streams, rollups and
            WebSocket topics as the market domain.
          </p>
          {own.length > 0 ? (
            <>
              <p>Streams already declared under <code>{prefix}</code>:</p>
              <table class="table compact">
                <thead>
                  <tr>
                    <th>Stream</th>
                    <th class="num">Rows</th>
                    <th>Last event</th>
                  </tr>
                </thead>
                <tbody>
                  {own.map((stream) => (
                    <tr key={stream.name}>
                      <td>{stream.name}</td>
                      <td class="num">{formatCompact(stream.rows)}</td>
                      <td>{formatDateTime(stream.last_ts)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          ) : (
            <Empty>
              No stream named <code>{prefix}*</code> on this server.
            </Empty>
          )}
        </Card>
      </div>
    );
  };
}
