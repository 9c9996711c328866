// The page's "Wake word" section: the enrolled voices (list, forget) and "Teach it my voice", a
// guided enrolment driven by the appliance's enrol_* events. Device data is set as text only.
const $ = (id) => document.getElementById(id);
const TAKES = 5; // the appliance's default; it refuses fewer than 3
const ENROL_EVENTS = new Set(["enrol_prompt", "enrol_take", "enrolled", "enrol_failed"]);

// "hey_jarvis", "hey_jarvis_v0.1", "micro:okay_nabu" or a model's path -> "hey Jarvis", "okay Nabu".
export function wakePhrase(models) {
  const model = String((models && models[0]) || "hey_jarvis");
  const base = model.replace(/^[a-z]+:/i, "").split(/[\\/]/).pop()
    .replace(/\.(tflite|onnx|json)$/i, "").replace(/_v\d+(\.\d+)*$/i, "");
  const words = base.split(/[_\s-]+/).filter(Boolean);
  if (!words.length) return "the wake word";
  const last = words.length - 1;
  words[last] = words[last].charAt(0).toUpperCase() + words[last].slice(1);
  return words.join(" ");
}

function sentence(text) {
  return String(text).replace(/[.\s]+$/, "");
}

function score(value) {
  return typeof value === "number" ? value.toFixed(2) : String(value ?? "–");
}

export function wakeWordSection(send) {
  let phrase = "hey Jarvis";
  let active = false; // following an enrolment (started here, by another page or replayed)
  let cancelling = false;
  let accepted = 0;
  let forgetting = null;
  let note = ""; // what the next list keeps saying (the voice just forgotten)

  const status = (text) => { $("profiles-status").textContent = text; };

  function showForm(enabled) {
    $("enrol-name").disabled = !enabled;
    $("enrol-start").disabled = !enabled;
  }

  function say(prompt, progress = $("enrol-progress").textContent) {
    $("enrol-prompt").textContent = prompt;
    $("enrol-progress").textContent = progress;
  }

  function begin(name) {
    active = true;
    cancelling = false;
    accepted = 0;
    $("enrol").hidden = false;
    $("enrol-title").textContent = `Learning ${name}'s voice`;
    $("enrol-takes").replaceChildren();
    $("enrol-bar").value = 0;
    $("enrol-cancel").hidden = false;
    $("enrol-close").hidden = true;
    $("enrol-error").textContent = "";
    showForm(false);
    $("enrol").scrollIntoView({ block: "nearest" });
    say("Get ready: after each chime, say the wake word.", "");
  }

  function finish(prompt, progress) {
    active = false;
    cancelling = false;
    say(prompt, progress);
    $("enrol-cancel").hidden = true;
    $("enrol-close").hidden = false;
    showForm(true);
  }

  function verdict(ev) {
    const li = document.createElement("li");
    if (ev.ok) {
      accepted += 1;
      li.textContent = `Take ${ev.take}: good (score ${score(ev.score)})`;
      li.className = "ok";
    } else {
      const reason = sentence(ev.reason || "not usable");
      li.textContent = `Take ${ev.take}: ${reason}. Say it again.`;
      li.className = "refused";
      say(`${reason}. Say it again after the chime.`);
    }
    $("enrol-takes").append(li);
    $("enrol-bar").value = accepted;
    if (ev.ok && accepted >= $("enrol-bar").max) say("Training…", `All ${accepted} takes done`);
  }

  function renderProfiles(profiles) {
    const list = $("profiles");
    list.replaceChildren();
    for (const p of profiles) {
      const name = String(p.name ?? "");
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.className = "profile-name";
      label.textContent = name;
      const takes = document.createElement("span");
      takes.className = "hint";
      takes.textContent = ` ${p.takes ?? "?"} takes`;
      const del = document.createElement("button");
      del.type = "button";
      del.className = "forget";
      del.textContent = "Delete";
      del.setAttribute("aria-label", `Delete ${name}'s voice`);
      del.addEventListener("click", () => {
        if (!window.confirm(`Forget ${name}'s voice? It will still wake as a guest does.`)) return;
        forgetting = name;
        send({ command: "forget_profile", name });
      });
      li.append(label, takes, del);
      list.append(li);
    }
    status([note, profiles.length ? "" : "No voices learned yet."].filter(Boolean).join(" "));
    note = "";
  }

  // An enrol_* event (live, or replayed from the hello's recent events).
  function enrolEvent(ev, replay = false) {
    const name = String(ev.name ?? "");
    switch (ev.event) {
      case "enrol_prompt":
        if (!active) begin(name);
        $("enrol-bar").max = ev.of || TAKES;
        say(`Say “${phrase}” now`, `Take ${ev.take ?? "?"} of ${ev.of ?? TAKES}`);
        break;
      case "enrol_take":
        if (active) verdict(ev);
        break;
      case "enrolled":
        if (active || !$("enrol").hidden) {
          finish(`Done: it knows ${name}'s voice.`, `${ev.takes} takes, trained in ${ev.train_s} s`);
          $("enrol-name").value = "";
        }
        if (!replay) send({ command: "profiles" });
        break;
      case "enrol_failed":
        if (active) finish(`Not learned: ${sentence(ev.reason || "stopped")}.`, "Try again when you are ready.");
        break;
      default:
        break;
    }
  }

  // A voice deleted anywhere (another page, the API): the list follows. A delete sent from this page
  // refreshes on its own ack (which comes after this event), so it does not ask twice.
  function forgotten(ev) {
    if (forgetting !== null) return;
    note = ev.name ? `${String(ev.name)}'s voice was deleted.` : "A voice was deleted.";
    send({ command: "profiles" });
  }

  // `appliance wakeword …` changed the voices in another process; the running wake word took them.
  function reloaded() {
    if (forgetting !== null) return;
    note = "The voices were changed on the device.";
    send({ command: "profiles" });
  }

  function hello(ev) {
    phrase = wakePhrase(ev.wake_models);
    $("voices").hidden = false;
    forgetting = null; // a delete sent on the old connection gets no ack on this one
    // A page opened (or reconnected) during an enrolment catches up from the recent events.
    if (ev.state === "enrolling" || active) {
      active = false;
      $("enrol").hidden = true;
      for (const past of ev.recent || []) if (ENROL_EVENTS.has(past.event)) enrolEvent(past, true);
    }
    if (ev.state !== "enrolling" && active) finish("It ended while this page was offline.", "");
    send({ command: "profiles" });
  }

  // Returns true when the ack was one of this section's commands.
  function ack(ev) {
    switch (ev.command) {
      case "profiles":
        if (ev.ok) renderProfiles(ev.profiles || []);
        else status(`Could not list the voices: ${ev.error}`);
        return true;
      case "forget_profile":
        if (ev.ok) {
          note = forgetting === null ? "Forgot the voice." : `Forgot ${forgetting}'s voice.`;
          status(note);
          send({ command: "profiles" });
        } else {
          status(`Could not forget ${forgetting ?? "it"}: ${ev.error}`);
        }
        forgetting = null;
        return true;
      case "stop":
        if (cancelling && !ev.ok) { cancelling = false; say(`Could not cancel: ${ev.error}`); }
        return false; // the page's own notice shows it too
      case "enroll":
        if (!ev.ok) {
          $("enrol-error").textContent = `Cannot learn a voice now: ${ev.error}`;
          if (active && !$("enrol-takes").children.length) { active = false; $("enrol").hidden = true; showForm(true); }
        }
        return true;
      default:
        return false;
    }
  }

  function state(ev) {
    // A cancelled enrolment whose device said nothing more than the state change.
    if (cancelling && active && ev.previous === "enrolling" && ev.state !== "enrolling") finish("Cancelled.", "");
  }

  $("enrol-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("enrol-name").value.trim();
    if (!name) return;
    begin(name);
    send({ command: "enroll", name, takes: TAKES });
  });
  $("enrol-cancel").addEventListener("click", () => {
    cancelling = true;
    say("Cancelling…");
    send({ command: "stop" });
  });
  $("enrol-close").addEventListener("click", () => { $("enrol").hidden = true; });

  return {
    hello,
    ack,
    state,
    event(ev, replay) {
      if (replay) return; // the hello asks for the list once, after its recent events
      if (ENROL_EVENTS.has(ev.event)) enrolEvent(ev);
      else if (ev.event === "profile_forgotten") forgotten(ev);
      else if (ev.event === "wake_profiles_reloaded") reloaded();
    },
  };
}
