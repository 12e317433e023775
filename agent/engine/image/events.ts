// The image store's events, as dockerd logs them (daemon/images/image_events.go): the actor is
// the image id (or, for pull and push, the reference), `name` the reference the action was about,
// and the image's labels are copied into the attributes while the image still exists.
import type { EventLog } from "../events.js";
import type { ImageRecord } from "./types.js";

export function imageEvent(
  events: EventLog | undefined,
  action: "tag" | "untag" | "delete" | "import" | "load" | "save" | "pull" | "push",
  actorId: string,
  name: string | undefined,
  image: ImageRecord | undefined,
): void {
  if (!events) return;
  const attributes: Record<string, string> = { ...(image?.config.config?.Labels ?? {}) };
  if (name) attributes.name = name;
  events.emit("image", action, actorId, attributes);
}
