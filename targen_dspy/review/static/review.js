// The review page. Everything from the run is untrusted: it reaches the document as text only
// (textContent, attribute values), never as HTML.
"use strict";

const SHOWN_META = ["context", "seed", "reasoning"];
const PAGE = 20;
const state = { facts: null, start: 0, answeredShown: 10 };

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function labelText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function valueText(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 1);
}

function percent(x) {
  return (100 * x).toFixed(1) + "%";
}

async function api(path, params = {}, body = undefined) {
  const query = new URLSearchParams(params).toString();
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path + (query ? "?" + query : ""), init);
  const value = await response.json();
  if (!response.ok) throw new Error(value.error || response.statusText);
  return value;
}

function showError(error) {
  const box = document.getElementById("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
}

function chips(record, answer) {
  const facts = state.facts;
  const row = el("div", { class: "chips" }, [el("span", { class: "id", text: String(record.id) })]);
  if (facts.label_field in record) {
    row.append(el("span", { class: "chip final", text: "label: " + labelText(record[facts.label_field]) }));
  }
  if ("constrained_label" in record) {
    row.append(el("span", { class: "chip", text: "asked for: " + labelText(record.constrained_label) }));
  }
  if (record.relabeled) row.append(el("span", { class: "chip relabeled", text: "relabeled" }));
  if (record.rejected) row.append(el("span", { class: "chip rejected", text: "rejected" }));
  if ("duplicate_of" in record) row.append(el("span", { class: "chip rejected", text: "duplicate" }));
  if (answer) {
    const given = answer.not_instance ? "not an instance" : labelText(answer.label);
    const kind = answer.not_instance ? "chip flagged" : "chip reviewer";
    row.append(el("span", { class: kind, text: "reviewer: " + given }));
  }
  return row;
}

function definitions(pairs, className = "") {
  const list = el("dl", className ? { class: className } : {});
  for (const [name, value] of pairs) list.append(el("dt", { text: name }), el("dd", { text: valueText(value) }));
  return list;
}

function card(record, answer) {
  const facts = state.facts;
  const fields = facts.fields.filter((name) => name in record && name !== facts.label_field);
  const shown = new Set([...fields, "id", facts.label_field, "constrained_label", "relabeled"]);
  const meta = [];
  for (const name of SHOWN_META) if (name in record) meta.push([name, record[name]]);
  if (record.attributes && typeof record.attributes === "object") {
    for (const [name, value] of Object.entries(record.attributes)) meta.push(["attribute " + name, value]);
  }
  if (record.rejected && typeof record.rejected === "object") {
    meta.push(["rejected by", record.rejected.by], ["reason", record.rejected.reason]);
  }
  if ("duplicate_of" in record) meta.push(["duplicate of", record.duplicate_of]);
  for (const name of [...SHOWN_META, "attributes", "rejected", "duplicate_of"]) shown.add(name);
  for (const [name, value] of Object.entries(record)) if (!shown.has(name)) meta.push([name, value]);
  const node = el("article", { class: "card", "data-id": String(record.id) }, [
    chips(record, answer),
    definitions(fields.map((name) => [name, record[name]])),
  ]);
  if (meta.length) node.append(definitions(meta, "meta"));
  return node;
}

function figure(title, rate, what) {
  const box = el("div", { class: "figure" }, [el("div", { class: "what", text: title })]);
  if (!rate.n) {
    box.append(el("div", { class: "value", text: "n/a" }), el("div", { class: "what", text: "no answers yet" }));
    return box;
  }
  const ci = el("div", { class: "ci" });
  ci.style.left = percent(rate.low);
  ci.style.width = percent(rate.high - rate.low);
  const point = el("div", { class: "point" });
  point.style.left = percent(rate.rate);
  box.append(
    el("div", { class: "value", text: percent(rate.rate) }),
    el("div", { class: "bar" }, [ci, point]),
    el("div", { class: "what", text: `95% CI ${percent(rate.low)}–${percent(rate.high)}, ${rate.agree} of ${rate.n}. ${what}` }),
  );
  return box;
}

function showAgreement(agreement) {
  const box = document.getElementById("agreement");
  box.replaceChildren(
    figure("Reviewer agrees with the final label", agreement.final,
      "1 minus this is the estimated label noise of the run."),
    figure("Reviewer agrees with the label asked for", agreement.constrained,
      "If this is lower than the figure beside it, self-correction helped on this run."),
  );
}

function answerButtons(record) {
  const facts = state.facts;
  const row = el("div", { class: "answers" });
  const send = async (body) => {
    try {
      await api("/api/answer", {}, { id: record.id, ...body });
      showError(null);
      await loadReview();
    } catch (error) {
      showError(error);
    }
  };
  if (facts.labels.values) {
    for (const label of facts.labels.values) {
      const button = el("button", { type: "button", "data-label": label.key, title: label.means, text: labelText(label.value) });
      button.addEventListener("click", () => send({ label: label.value }));
      row.append(button);
    }
  } else {
    const input = el("input", { type: "text", maxlength: "1000", "aria-label": facts.label_field, placeholder: facts.label_field });
    const button = el("button", { type: "button", "data-label": "typed", text: "Answer" });
    button.addEventListener("click", () => send({ label: input.value }));
    row.append(input, button);
  }
  const flag = el("button", { type: "button", class: "not-instance", "data-label": "not-instance", text: "Not an instance of the task" });
  flag.addEventListener("click", () => send({ not_instance: true }));
  row.append(flag);
  return row;
}

async function loadReview() {
  const pending = await api("/api/review", { status: "pending", count: 1 });
  const answered = await api("/api/review", { status: "answered", count: state.answeredShown });
  showAgreement(pending.agreement);
  document.getElementById("progress").textContent =
    `${pending.answered} of ${pending.sample} sampled instances answered ` +
    `(a stratified sample of ${percent(state.facts.share)} of each label, relabeled or not).`;
  const next = document.getElementById("pending");
  if (pending.items.length) {
    const item = pending.items[0];
    next.replaceChildren(card(item.record), answerButtons(item.record));
  } else {
    next.replaceChildren(el("p", { text: "Every sampled instance is answered." }));
  }
  document.getElementById("answered").replaceChildren(...answered.items.map((item) => card(item.record, item.answer)));
  document.getElementById("answered-more").hidden = answered.total <= answered.items.length;
}

async function loadBrowse() {
  const form = new FormData(document.getElementById("filters"));
  const params = Object.fromEntries(form.entries());
  const page = await api("/api/instances", { ...params, start: state.start, count: PAGE });
  const last = Math.min(page.start + page.items.length, page.total);
  document.getElementById("browse-count").textContent =
    page.total ? `${page.start + 1}–${last} of ${page.total} instances` : "No instance matches.";
  document.getElementById("instances").replaceChildren(...page.items.map((record) => card(record)));
  document.getElementById("prev").disabled = page.start === 0;
  document.getElementById("next").disabled = last >= page.total;
}

function table(header, rows) {
  return el("table", {}, [
    el("tr", {}, header.map((cell) => el("th", { text: cell }))),
    ...rows.map((row) => el("tr", {}, row.map((cell, i) => el(i ? "td" : "th", { text: String(cell) })))),
  ]);
}

function labelKeys(counts) {
  const facts = state.facts;
  const declared = facts.labels.values ? facts.labels.values.map((label) => label.key) : [];
  const seen = new Set([...Object.keys(counts.labels), ...Object.keys(counts.confusion)]);
  return [...declared, ...[...seen].filter((key) => !declared.includes(key)).sort()];
}

function keyText(key) {
  try {
    return labelText(JSON.parse(key));
  } catch {
    return key;
  }
}

function showStats() {
  const counts = state.facts.counts;
  const keys = labelKeys(counts);
  const total = Object.values(counts.labels).reduce((a, b) => a + b, 0);
  document.getElementById("label-counts").replaceChildren(table(
    ["label", "instances", "share"],
    keys.map((key) => [keyText(key), counts.labels[key] || 0, total ? percent((counts.labels[key] || 0) / total) : "–"]),
  ));
  const rows = keys.filter((key) => key in counts.confusion);
  document.getElementById("confusion").replaceChildren(rows.length
    ? table(["asked for \\ final", ...keys.map(keyText)], rows.map((row) => [keyText(row), ...keys.map((col) => counts.confusion[row][col] || 0)]))
    : el("p", { text: "This run has no self-correction (no constrained labels)." }));
  const plots = document.getElementById("plots");
  if (!state.facts.plots.length) {
    plots.replaceChildren(el("p", { text: "No analysis yet: run `targen analyze RUN/data.jsonl` and reload." }));
  } else {
    plots.replaceChildren(...state.facts.plots.map((name) => el("figure", {}, [
      el("img", { src: "/plots/" + encodeURIComponent(name), alt: name }), el("figcaption", { text: name }),
    ])));
  }
}

function showTab(name) {
  for (const button of document.querySelectorAll(".tab")) {
    const selected = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(selected));
    document.getElementById(button.dataset.tab).hidden = !selected;
  }
  if (location.hash !== "#" + name) history.replaceState(null, "", "#" + name);
}

async function start() {
  const facts = await api("/api/run");
  state.facts = facts;
  document.getElementById("task").textContent = facts.task;
  const counts = facts.counts.instances;
  let line = `${facts.run} · ${counts.data} instances, ${facts.counts.relabeled} relabeled, ` +
    `${counts.rejected} rejected, ${counts.duplicates} duplicates · method ${facts.method}`;
  const unreadable = Object.values(facts.counts.unreadable).reduce((a, b) => a + b, 0);
  if (unreadable) line += ` · ${unreadable} unreadable lines skipped`;
  document.getElementById("run-line").textContent = line;
  const select = document.getElementById("f-label");
  for (const key of labelKeys(facts.counts)) select.append(el("option", { value: key, text: keyText(key) }));
  for (const button of document.querySelectorAll(".tab")) {
    button.addEventListener("click", () => showTab(button.dataset.tab));
  }
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.start = 0;
    loadBrowse().then(() => showError(null), showError);
  });
  document.getElementById("prev").addEventListener("click", () => {
    state.start = Math.max(0, state.start - PAGE);
    loadBrowse().catch(showError);
  });
  document.getElementById("next").addEventListener("click", () => {
    state.start += PAGE;
    loadBrowse().catch(showError);
  });
  document.getElementById("answered-more").addEventListener("click", () => {
    state.answeredShown += 10;
    loadReview().catch(showError);
  });
  showStats();
  const fromHash = () => showTab(["browse", "stats"].includes(location.hash.slice(1)) ? location.hash.slice(1) : "review");
  window.addEventListener("hashchange", fromHash);
  fromHash();
  await Promise.all([loadReview(), loadBrowse()]);
  document.body.dataset.ready = "true";
}

start().catch(showError);
