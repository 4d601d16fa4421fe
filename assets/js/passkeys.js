// Passkeys (WebAuthn) in the browser: the login page and Settings hand this script the
// options the server made (binary fields as base64url), it runs navigator.credentials.create
// or .get, and answers with the credential as JSON (base64url again) for the server to check.
// It never throws: every promise resolves to {credential} or {error: "a readable sentence"}.
// Loaded by iris_reflex/components/passkeys.py; called through rx.call_script by the states.
(() => {
  if (window.irisPasskeys) return;

  const toBytes = (text) => {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  };
  const toText = (buffer) => {
    let binary = '';
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const descriptors = (list) => (list || []).map((c) => ({...c, id: toBytes(c.id)}));

  const supported = () => !!(window.PublicKeyCredential && navigator.credentials
    && window.isSecureContext);

  function readable(error, creating) {
    switch (error && error.name) {
      case 'NotAllowedError':
      case 'AbortError':
        return 'The passkey request was cancelled or timed out.';
      case 'InvalidStateError':
        return creating ? 'This device already holds a passkey for your account.'
          : 'That passkey cannot be used here.';
      case 'SecurityError':
        return 'Passkeys do not work at this address. Open Iris at its usual address '
          + '(a name such as localhost, not a number).';
      case 'NotSupportedError':
        return 'This device has no authenticator that can make a passkey.';
      default:
        return 'The passkey could not be used' + (error && error.message
          ? ': ' + error.message : '.');
    }
  }

  function answer(credential) {
    const r = credential.response;
    const response = {clientDataJSON: toText(r.clientDataJSON)};
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = typeof r.getTransports === 'function' ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
    };
  }

  async function run(creating, options) {
    if (!supported()) return {error: 'This browser does not support passkeys.'};
    try {
      let credential;
      if (creating) {
        const publicKey = {...options, challenge: toBytes(options.challenge),
          user: {...options.user, id: toBytes(options.user.id)},
          excludeCredentials: descriptors(options.excludeCredentials)};
        credential = await navigator.credentials.create({publicKey});
      } else {
        const publicKey = {...options, challenge: toBytes(options.challenge),
          allowCredentials: descriptors(options.allowCredentials)};
        credential = await navigator.credentials.get({publicKey});
      }
      if (!credential) return {error: 'The passkey request was cancelled or timed out.'};
      return {credential: answer(credential)};
    } catch (error) {
      return {error: readable(error, creating)};
    }
  }

  window.irisPasskeys = {
    supported,
    create: (options) => run(true, options),
    get: (options) => run(false, options),
  };
})();
