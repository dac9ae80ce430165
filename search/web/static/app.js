// thumbsearch page: plain JavaScript over the JSON API (no external requests).
// Every view has an address: /?v=ID (neighbours of a video), /?page=N[&query=Q] (browse),
// /?tab=duplicates, /?tab=watchlist, / (start); Back, Forward and reload show the same view
// again.
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

// "2024-03-05T10:00:00+00:00" -> "5 Mar 2024, 10:00" in the reader's locale and time zone.
function humanTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// "2024-03-05T10:00:00+00:00" -> "5 Mar 2024" in the reader's locale; "" when absent.
function humanDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

// One video card; clicking the picture searches from that video. ``score`` and
// ``strength`` come from the API (the strength scale lives on the server); ``actions``
// (nodes) go in a row at the bottom.
function card(video, extra, score, strength, actions) {
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
  if (actions && actions.length) meta.append(el("div", { class: "actions" }, ...actions));
  return el("div", { class: "card" }, img, meta);
}

// -- the watchlist ---------------------------------------------------------------------

let watchedVideos = new Set(); // video ids watched, so their buttons say so

function noteWatched(items) {
  watchedVideos = new Set(items.filter((i) => i.video_id).map((i) => i.video_id));
}

function postJson(url, body) {
  return api(url, { method: "POST", headers: { "Content-Type": "application/json" },
                    body: JSON.stringify(body) });
}

function addedText(item) {
  const n = item.matches_total;
  return `watching ${item.name} (threshold ${item.threshold}): ${n} stored ` +
         `video${n === 1 ? "" : "s"} already match${n === 1 ? "es" : ""}` +
         (item.more_may_match ? " (the search stopped at its limit: there may be more)" : "");
}

// A "Watch" button: ``body`` is what POST /api/watch takes (JSON, or FormData for an image).
function watchButton(videoId, body, statusId) {
  const done = videoId && watchedVideos.has(videoId);
  const button = el("button", { type: "button", class: "watch", "data-video-id": videoId || "",
                                title: "report its re-uploads from now on (Watchlist tab)" },
                    done ? "watched" : "Watch");
  button.disabled = Boolean(done);
  button.addEventListener("click", async () => {
    button.disabled = true;
    setStatus(statusId, "adding to the watchlist…", false);
    try {
      const item = body instanceof FormData
        ? await api("/api/watch", { method: "POST", body })
        : await postJson("/api/watch", body);
      if (item.video_id) watchedVideos.add(item.video_id);
      button.textContent = "watched";
      setStatus(statusId, addedText(item), false);
    } catch (error) {
      button.disabled = false;
      setStatus(statusId, error.message, true);
    }
  });
  return button;
}

function searchFrom(videoId) {
  const link = el("a", { href: address({ view: "search", v: videoId }), class: "search-from" },
                  "search from it");
  link.addEventListener("click", (event) => {
    event.preventDefault();
    navigate({ view: "search", v: videoId });
  });
  return link;
}

function watchItem(item) {
  const img = el("img", { src: item.thumbnail || "", alt: item.name, loading: "lazy" });
  if (item.video_id) {
    img.title = "find thumbnails like this one";
    img.style.cursor = "pointer";
    img.addEventListener("click", () => navigate({ view: "search", v: item.video_id }));
  }
  const remove = el("button", { type: "button", class: "remove" }, "Remove");
  remove.addEventListener("click", async () => {
    const n = item.matches_total;
    if (!confirm(`Stop watching ${item.name}? Its ${n} recorded match${n === 1 ? "" : "es"} ` +
                 "go with it.")) return;
    try {
      await api(`/api/watch/${encodeURIComponent(item.name)}`, { method: "DELETE" });
      setStatus("watch-status", `stopped watching ${item.name}`, false);
      showWatchlist(false);
    } catch (error) {
      setStatus("watch-status", error.message, true);
    }
  });
  const source = item.video_id && item.youtube_url
    ? el("a", { href: item.youtube_url, target: "_blank", rel: "noopener noreferrer" },
         item.source === item.name ? "on YouTube" : item.source)
    : el("span", {}, item.source === item.name ? "" : item.source);
  const n = item.matches_total;
  const facts = `${item.kind} · threshold ${item.threshold} · ${n} match${n === 1 ? "" : "es"}` +
    (item.latest_match_at ? ` · latest ${humanTime(item.latest_match_at)}` : "");
  const head = el("div", { class: "watch-head" }, img, el("div", { class: "info" },
    el("div", { class: "name" }, item.name),
    item.title ? el("div", { class: "video-title" }, item.title,
                    item.channel_title ? ` · ${item.channel_title}` : "") : "",
    el("div", { class: "facts" }, facts),
    el("div", { class: "source" }, source, " "),
    el("div", {}, remove)));
  const matches = item.latest_matches.length
    ? el("div", { class: "grid" }, ...item.latest_matches.map((m) => card(
        { ...m, title: m.title || m.video_id }, humanTime(m.found_at), m.score, m.strength,
        [searchFrom(m.video_id)])))
    : el("p", { class: "none" }, "no re-uploads found yet");
  return el("div", { class: "watch-item", "data-name": item.name }, head, matches);
}

async function showWatchlist(clearStatus) {
  const token = ++current;
  if (clearStatus) setStatus("watch-status", "", false);
  try {
    const data = await api("/api/watch");
    if (token !== current) return;
    noteWatched(data.items);
    $("watch-threshold").placeholder = String(data.default_threshold);
    $("watchlist").replaceChildren(...data.items.map(watchItem));
    if (!data.items.length) {
      $("watchlist").append(el("p", { class: "none" },
        "Nothing is watched yet: press Watch on a search result, or name a video above."));
    }
  } catch (error) {
    if (token !== current) return;
    $("watchlist").replaceChildren();
    setStatus("watch-status", error.message, true);
  }
}

async function addToWatchlist(body) {
  setStatus("watch-status", "adding to the watchlist…", false);
  try {
    const item = body instanceof FormData
      ? await api("/api/watch", { method: "POST", body })
      : await postJson("/api/watch", body);
    await showWatchlist(false);
    setStatus("watch-status", addedText(item), false);
  } catch (error) {
    setStatus("watch-status", error.message, true);
  }
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
    query.append(card({ ...data.query, title: data.query.title || data.query.video_id }, "query",
                      null, null, [watchButton(data.query.video_id, { video: data.query.video_id },
                                               "status")]));
  } else {
    const body = new FormData();
    if (lastUpload) body.append("image", lastUpload);
    query.append(el("div", { class: "upload-query" }, `query image: ${data.query.image} `,
                    watchButton(null, body, "status")));
  }
  $("results").replaceChildren(...data.results.map(
    (r) => card(r, `#${r.rank}`, r.score, r.strength,
                [watchButton(r.video_id, { video: r.video_id }, "status")])));
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

let lastUpload = null; // the uploaded query image, for its Watch button

async function searchUpload(file) {
  const token = ++current;
  lastUpload = file;
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
  if (params.get("tab") === "watchlist") return { view: "watchlist" };
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
  } else if (state.view === "duplicates" || state.view === "watchlist") {
    params.set("tab", state.view);
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
  } else if (state.view === "watchlist") {
    showTab("watchlist");
    showWatchlist(true);
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
  else if (tab === "duplicates" || tab === "watchlist") navigate({ view: tab });
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
$("watch-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const ref = $("watch-ref").value.trim();
  if (!ref) return;
  const body = { video: ref };
  if ($("watch-threshold").value) body.threshold = Number($("watch-threshold").value);
  addToWatchlist(body);
});
$("watch-upload").addEventListener("change", () => {
  if (!$("watch-upload").files.length) return;
  const body = new FormData();
  body.append("image", $("watch-upload").files[0]);
  if ($("watch-threshold").value) body.append("threshold", $("watch-threshold").value);
  addToWatchlist(body);
  $("watch-upload").value = "";
});
api("/api/stats").then((s) => { $("stats").textContent = `${s.videos} videos · ${s.model}`; }).catch(() => {});
api("/api/watch?matches=0").then((w) => noteWatched(w.items)).catch(() => {});

const initial = parseAddress(location.search);
history.replaceState(null, "", address(initial));
render(initial);
