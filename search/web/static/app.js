// thumbsearch page: plain JavaScript over the JSON API (no external requests).
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(url, options) {
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function setStatus(id, text, isError) {
  const node = $(id);
  node.textContent = text;
  node.className = isError ? "error" : "";
}

// One video card; clicking the picture searches from that video.
function card(video, extra) {
  const img = el("img", { src: video.thumbnail || "", alt: video.title || video.video_id,
                          loading: "lazy", "data-video-id": video.video_id,
                          title: "find thumbnails like this one" });
  img.addEventListener("click", () => searchVideo(video.video_id));
  const meta = el("div", { class: "meta" });
  if (video.score !== undefined) meta.append(el("span", { class: "score" }, video.score.toFixed(3)));
  meta.append(el("div", { class: "title", title: video.title || "" }, video.title || video.video_id));
  meta.append(el("div", { class: "channel" }, video.channel_title || ""));
  const link = video.youtube_url
    ? el("a", { href: video.youtube_url, target: "_blank", rel: "noopener noreferrer" }, video.video_id)
    : el("span", {}, video.video_id);
  meta.append(el("div", {}, link, extra ? ` · ${extra}` : ""));
  return el("div", { class: "card" }, img, meta);
}

function showResult(data) {
  const query = $("query");
  query.replaceChildren();
  if (data.query.video_id) {
    query.append(card({ ...data.query, title: data.query.title || data.query.video_id }, "query"));
  } else {
    query.append(el("div", {}, `query image: ${data.query.image}`));
  }
  $("results").replaceChildren(...data.results.map((r) => card(r, `#${r.rank}`)));
  setStatus("status", `${data.results.length} neighbours (model ${data.model})`, false);
}

async function searchVideo(ref) {
  showTab("search");
  $("ref").value = ref;
  setStatus("status", "searching…", false);
  try {
    const k = $("k").value || "12";
    showResult(await api(`/api/similar/${encodeURIComponent(ref)}?k=${encodeURIComponent(k)}`));
  } catch (error) {
    setStatus("status", error.message, true);
  }
}

async function searchUpload(file) {
  setStatus("status", "embedding the image…", false);
  const body = new FormData();
  body.append("image", file);
  body.append("k", $("k").value || "12");
  try {
    showResult(await api("/api/similar", { method: "POST", body }));
  } catch (error) {
    setStatus("status", error.message, true);
  }
}

let browsePage = 1;
async function browse() {
  const query = $("browse-query").value;
  const params = new URLSearchParams({ page: String(browsePage) });
  if (query) params.set("query", query);
  try {
    const data = await api(`/api/videos?${params}`);
    const select = $("browse-query");
    if (select.options.length === 1) {
      for (const q of data.queries) select.append(el("option", { value: q.text }, `${q.text} (${q.videos})`));
    }
    $("page-info").textContent = ` page ${data.page} of ${Math.max(1, data.pages)} (${data.total} videos) `;
    $("browse").replaceChildren(...data.videos.map((v) => card(v)));
  } catch (error) {
    $("page-info").textContent = error.message;
  }
}

async function duplicates() {
  setStatus("dup-status", "grouping…", false);
  const params = new URLSearchParams({ threshold: $("threshold").value || "0.92",
                                       across_channels: String($("across").checked) });
  try {
    const data = await api(`/api/duplicates?${params}`);
    $("groups").replaceChildren(...data.groups.map((g, i) => el("div", { class: "group" },
      el("h3", {}, `group ${i + 1}: ${g.size} videos, ${g.channels.length} channels, first published ${g.first_published || "unknown"}`),
      el("div", { class: "grid" }, ...g.videos.map((v) => card(v, v.published_at ? v.published_at.slice(0, 10) : ""))))));
    setStatus("dup-status", `${data.groups.length} groups above ${data.threshold}`, false);
  } catch (error) {
    setStatus("dup-status", error.message, true);
  }
}

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.tab === name);
    $(`tab-${button.dataset.tab}`).hidden = button.dataset.tab !== name;
  }
  if (name === "browse") browse();
}

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const ref = $("ref").value.trim();
  if (ref) searchVideo(ref);
});
$("upload").addEventListener("change", () => { if ($("upload").files.length) searchUpload($("upload").files[0]); });
$("browse-query").addEventListener("change", () => { browsePage = 1; browse(); });
$("prev").addEventListener("click", () => { if (browsePage > 1) { browsePage -= 1; browse(); } });
$("next").addEventListener("click", () => { browsePage += 1; browse(); });
$("dup-form").addEventListener("submit", (event) => { event.preventDefault(); duplicates(); });
api("/api/stats").then((s) => { $("stats").textContent = `${s.videos} videos · ${s.model}`; }).catch(() => {});
// A link like /?q=VIDEO_ID_OR_URL opens with that search done.
const initial = new URLSearchParams(window.location.search).get("q");
if (initial) searchVideo(initial);
