// Sending files (licensed users, PROTOCOL §8).

import { send } from "./calls.js";
import { ui } from "./dom.js";
import { escapeHtml, formatBytes } from "./format.js";
import { setNotice } from "./notices.js";
import { state } from "./state.js";

export function uploadBytes(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    state.upload = xhr;
    xhr.open("POST", url);
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try {
        body = JSON.parse(xhr.responseText || "{}");
      } catch {
        // not JSON: the status says enough
      }
      if (xhr.status === 201) resolve(body);
      else reject(Object.assign(new Error(body.text || `upload failed (${xhr.status})`), { status: xhr.status, body }));
    });
    xhr.addEventListener("error", () => reject(new Error("the upload failed (network)")));
    xhr.addEventListener("abort", () => reject(Object.assign(new Error("cancelled"), { cancelled: true })));
    xhr.send(file);
  });
}

export async function sendFile(conv, file) {
  if (!state.licensed) {
    setNotice(conv, "Sending files needs the messages licence.");
    return;
  }
  if (state.upload) {
    setNotice(conv, "Wait for the upload that is running to finish.");
    return;
  }
  ui.uploadName.textContent = `Uploading ${file.name}`;
  ui.uploadProgress.value = 0;
  ui.upload.hidden = false;
  state.upload = true;
  try {
    const mime = file.type || "application/octet-stream";
    const { result } = await state.client.messages("CreateFileBuffer", { name: file.name, size: file.size, mime });
    // `upload` writes (it stays with us); `url` only reads, and goes into the message.
    await uploadBytes(result.upload, file, (share) => {
      ui.uploadProgress.value = Math.round(share * 100);
    });
    ui.uploadProgress.value = 100;
    send(conv, escapeHtml(file.name), [{ url: result.url, name: file.name, mime, size: file.size }]);
  } catch (error) {
    if (!error.cancelled) setNotice(conv, uploadError(file, error));
  } finally {
    state.upload = null;
    ui.upload.hidden = true;
  }
}

export function uploadError(file, error) {
  const body = error.body || (error.frame || {});
  if (error.code === "too_big" || error.status === 413 || body.code === "too_big") {
    const max = body.max_bytes;
    return `${file.name} is too big to send${max !== undefined ? ` (at most ${formatBytes(max)} left)` : ""}.`;
  }
  if (error.code === "unlicensed") return "Sending files needs the messages licence.";
  if (error.status === 410) return "The upload took too long; try again.";
  return `${file.name} could not be sent: ${error.message}.`;
}
