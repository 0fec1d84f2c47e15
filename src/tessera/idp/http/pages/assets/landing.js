// The landing page's first-party login: /auth/login, then the second factor if one is due.
const status = document.getElementById("status");
const codeForm = document.getElementById("code");
let mfa = null;  // {token, enrol}: the second step of the login in progress

async function post(path, fields) {
  const response = await fetch(path, {
    method: "POST", body: new URLSearchParams(fields), credentials: "same-origin",
  });
  return [response, await response.json()];
}

function loggedIn(body) {
  const claims = JSON.parse(atob(body.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  status.textContent = "Logged in as " + claims.sub + " with scope " + body.scope;
  const shown = document.getElementById("token");
  shown.textContent = body.access_token; shown.hidden = false;
  codeForm.hidden = true;
  if (body.recovery_codes) {
    document.getElementById("recovery-codes").textContent = body.recovery_codes.join("\n");
    document.getElementById("recovery").hidden = false;
  }
}

async function askForCode(body) {
  mfa = {token: body.mfa_token, enrol: body.error === "mfa_enrollment_required"};
  document.getElementById("login").hidden = true;
  document.getElementById("use-recovery-label").hidden = mfa.enrol;
  if (mfa.enrol) {
    const [response, enrolment] = await post("/auth/mfa/totp", {mfa_token: mfa.token});
    if (!response.ok) { status.textContent = "Refused: " + enrolment.error_description; return; }
    document.getElementById("secret").textContent = enrolment.secret;
    document.getElementById("qr").src = "data:image/svg+xml;base64," + btoa(enrolment.qr_svg);
    document.getElementById("enrol").hidden = false;
  }
  status.textContent = body.error_description;
  codeForm.hidden = false;
  codeForm.elements.otp.focus();
}

document.getElementById("use-recovery").addEventListener("change", (event) => {
  document.getElementById("code-label").textContent =
    event.target.checked ? "Recovery code" : "Code from your authenticator";
});

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const [response, body] = await post("/auth/login", new FormData(event.target));
  if (response.status === 403 && body.mfa_token) { await askForCode(body); return; }
  if (!response.ok) { status.textContent = "Refused: " + body.error_description; return; }
  loggedIn(body);
});

codeForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = codeForm.elements.otp.value.trim();
  const recovery = document.getElementById("use-recovery").checked && !mfa.enrol;
  const [response, body] = mfa.enrol
    ? await post("/auth/mfa/totp/confirm", {mfa_token: mfa.token, otp: code})
    : await post("/auth/login/mfa", {mfa_token: mfa.token, [recovery ? "recovery_code" : "otp"]: code});
  if (!response.ok) { status.textContent = "Refused: " + body.error_description; return; }
  loggedIn(body);
});
