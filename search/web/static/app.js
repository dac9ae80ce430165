// thumbsearch page: plain JavaScript over the JSON API (no external requests).
// Every view has an address: /?v=ID (neighbours of a video), /?page=N[&query=Q] (browse),
// /?tab=duplicates, / (start); Back, Forward and reload show the same view again.
"use strict";

const $ = (id) => document.getElementById(id);
const DEFAULT_K = "12";
const STRENGTH_TEXT = { strong: "likely re-upload", medium: "looks alike", weak: "weak likeness" };

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

// "2024-03-05T10:00:00+00:00" -> "5 Mar 2024" in the reader's locale; "" when absent.
function humanDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

// One video card; clicking the picture searches from that video. ``score`` and
// ``strength`` come from the API (the strength scale lives on the server).
function card(video, extra, score, strength) {
  const img = el("img", { src: video.thumbnail || "", alt: video.title || video.video_id,
                          loading: "lazy", "data-video-id": video.video_id,
                          title: "find thumbnails like this one" });
  img.addEventListener("click", () => navigate({ view: "search", v: video.video_id }));
  const meta = el("div", { class: "meta" });
  const top = el("div", { class: "top" });
  top.append(el("span", { class: "rank" }, extra || ""));
  if (score !== undefined && score !== null) {
    top.append(el("span", { class: `score ${strength || ""}`, "data-strength": strength || "",
                            title: STRENGTH_TEXT[strength] || "" }, score.toFixed(3)));
  }
  meta.append(top);
  meta.append(el("div", { class: "title", title: video.title || "" }, video.title || video.video_id));
  meta.append(el("div", { class: "channel" }, video.channel_title || "\u00a0"));
  const link = video.youtube_url
    ? el("a", { href: video.youtube_url, target: "_blank", rel: "noopener noreferrer" }, video.video_id)
    : el("span", {}, video.video_id);
  meta.append(el("div", { class: "id" }, link));
  return el("div", { class: "card" }, img, meta);
}

// -- views ---------------------------------------------------------------------------

let current = 0; // the latest request: answers to older ones are dropped

function clearResults() {
  $("query").replaceChildren();
  $("results").replaceChildren();
  $("landing").hidden = true;
}

function showResult(data) {
  const query = $("query");
  query.replaceChildren();
  if (data.query.video_id) {
    query.append(card({ ...data.query, title: data.query.title || data.query.video_id }, "query"));
  } else {
    query.append(el("div", { class: "upload-query" }, `query image: ${data.query.image}`));
  }
  $("results").replaceChildren(...data.results.map(
    (r) => card(r, `#${r.rank}`, r.score, r.strength)));
  $("landing").hidden = true;
}

async function showSearch(ref, k) {
  const token = ++current;
  $("ref").value = ref;
  $("k").value = k || DEFAULT_K;
  clearResults();
  setStatus("status", "searching…", false);
  try {
    const data = await api(`/api/similar/${encodeURIComponent(ref)}?k=${encodeURIComponent($("k").value)}`);
    if (token !== current) return;
    showResult(data);
    setStatus("status", `${data.results.length} neighbours (model ${data.model})`, false);
    if (data.query.video_id && data.query.video_id !== ref) {
      history.replaceState(null, "", address({ view: "search", v: data.query.video_id, k }));
      $("ref").value = data.query.video_id;
    }
  } catch (error) {
    if (token !== current) return;
    clearResults();
    setStatus("status", error.message, true);
  }
}

async function searchUpload(file) {
  const token = ++current;
  showTab("search");
  clearResults();
  setStatus("status", "embedding the image…", false);
  const body = new FormData();
  body.append("image", file);
  body.append("k", $("k").value || DEFAULT_K);
  try {
    const data = await api("/api/similar", { method: "POST", body });
    if (token !== current) return;
    showResult(data);
    setStatus("status", `${data.results.length} neighbours of the uploaded image (model ${data.model}); ` +
              "an upload has no address: the address bar still shows the previous view", false);
  } catch (error) {
    if (token !== current) return;
    clearResults();
    setStatus("status", error.message, true);
  }
}

async function showLanding() {
  const token = ++current;
  $("ref").value = "";
  clearResults();
  setStatus("status", "", false);
  try {
    const data = await api("/api/videos?per_page=8");
    if (token !== current) return;
    $("landing-grid").replaceChildren(...data.videos.map((v) => card(v, humanDate(v.published_at))));
    $("landing-note").textContent = data.total
      ? `The corpus holds ${data.total} videos. Start from one of the latest:`
      : "The corpus is empty: run `thumbsearch ingest QUERY` or `thumbsearch add PATH` first.";
    $("landing").hidden = false;
  } catch (error) {
    if (token !== current) return;
    setStatus("status", error.message, true);
  }
}

let queriesListed = false;
let browseState = { page: 1, pages: 1, query: "" };
async function showBrowse(page, query) {
  const token = ++current;
  const select = $("browse-query");
  const params = new URLSearchParams({ page: String(page) });
  if (query) params.set("query", query);
  try {
    const data = await api(`/api/videos?${params}`);
    if (token !== current) return;
    if (!queriesListed) {
      for (const q of data.queries) select.append(el("option", { value: q.text }, `${q.text} (${q.videos})`));
      queriesListed = true;
    }
    select.value = query || "";
    const pages = Math.max(1, data.pages);
    browseState = { page: data.page, pages, query: query || "" };
    $("page-info").textContent = ` page ${data.page} of ${pages} (${data.total} videos) `;
    $("prev").disabled = data.page <= 1;
    $("next").disabled = data.page >= pages;
    $("browse").replaceChildren(...data.videos.map((v) => card(v, humanDate(v.published_at))));
    if (data.page !== page) {  // a page past the end: the address names the page shown
      history.replaceState(null, "", address({ view: "browse", page: data.page, query }));
    }
  } catch (error) {
    if (token !== current) return;
    $("browse").replaceChildren();
    $("prev").disabled = $("next").disabled = true;
    $("page-info").textContent = ` ${error.message} `;
  }
}

async function showDuplicates() {
  const token = ++current;
  setStatus("dup-status", "grouping…", false);
  $("groups").replaceChildren();
  const params = new URLSearchParams({ threshold: $("threshold").value || "0.75",
                                       across_channels: String($("across").checked) });
  try {
    const data = await api(`/api/duplicates?${params}`);
    if (token !== current) return;
    $("groups").replaceChildren(...data.groups.map((g, i) => el("div", { class: "group" },
      el("h3", {}, `group ${i + 1}: ${g.size} videos, ${g.channels.length} channels` +
                   (g.first_published ? `, first published ${humanDate(g.first_published)}` : "")),
      el("div", { class: "grid" }, ...g.videos.map(
        (v) => card(v, humanDate(v.published_at), v.best_score, v.strength))))));
    setStatus("dup-status", `${data.groups.length} groups above ${data.threshold}`, false);
  } catch (error) {
    if (token !== current) return;
    $("groups").replaceChildren();
    setStatus("dup-status", error.message, true);
  }
}

// -- addresses -------------------------------------------------------------------------

function parseAddress(search) {
  const params = new URLSearchParams(search);
  const v = params.get("v") || params.get("q"); // ?q= is the older form of a search link
  if (v) return { view: "search", v, k: params.get("k") || "" };
  if (params.has("page") || params.get("tab") === "browse") {
    const page = Math.max(1, parseInt(params.get("page") || "1", 10) || 1);
    return { view: "browse", page, query: params.get("query") || "" };
  }
  if (params.get("tab") === "duplicates") return { view: "duplicates" };
  return { view: "home" };
}

function address(state) {
  const params = new URLSearchParams();
  if (state.view === "search") {
    params.set("v", state.v);
    if (state.k && state.k !== DEFAULT_K) params.set("k", state.k);
  } else if (state.view === "browse") {
    params.set("page", String(state.page));
    if (state.query) params.set("query", state.query);
  } else if (state.view === "duplicates") {
    params.set("tab", "duplicates");
  }
  const text = params.toString();
  return text ? `/?${text}` : "/";
}

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.tab === name);
    $(`tab-${button.dataset.tab}`).hidden = button.dataset.tab !== name;
  }
}

let lastSearch = null; // the Search tab returns to it

function render(state) {
  if (state.view === "search") {
    lastSearch = state;
    showTab("search");
    showSearch(state.v, state.k);
  } else if (state.view === "browse") {
    showTab("browse");
    showBrowse(state.page, state.query);
  } else if (state.view === "duplicates") {
    showTab("duplicates");
    current++;
  } else {
    lastSearch = null;
    showTab("search");
    showLanding();
  }
}

// A new view: a new history entry (the same address again only replaces it).
function navigate(state) {
  const target = address(state);
  if (target === location.pathname + location.search) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  render(state);
}

window.addEventListener("popstate", () => render(parseAddress(location.search)));

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => {
  const tab = b.dataset.tab;
  if (tab === "browse") navigate({ view: "browse", page: browseState.page, query: browseState.query });
  else if (tab === "duplicates") navigate({ view: "duplicates" });
  else navigate(lastSearch || { view: "home" });
}));
$("home").addEventListener("click", (event) => { event.preventDefault(); navigate({ view: "home" }); });
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const ref = $("ref").value.trim();
  if (ref) navigate({ view: "search", v: ref, k: $("k").value });
});
$("upload").addEventListener("change", () => {
  if ($("upload").files.length) searchUpload($("upload").files[0]);
});
$("browse-query").addEventListener("change", () => navigate({ view: "browse", page: 1, query: $("browse-query").value }));
$("prev").addEventListener("click", () => {
  if (browseState.page > 1) navigate({ view: "browse", page: browseState.page - 1, query: browseState.query });
});
$("next").addEventListener("click", () => {
  if (browseState.page < browseState.pages) navigate({ view: "browse", page: browseState.page + 1, query: browseState.query });
});
$("dup-form").addEventListener("submit", (event) => { event.preventDefault(); showDuplicates(); });
api("/api/stats").then((s) => { $("stats").textContent = `${s.videos} videos · ${s.model}`; }).catch(() => {});

const initial = parseAddress(location.search);
history.replaceState(null, "", address(initial));
render(initial);
