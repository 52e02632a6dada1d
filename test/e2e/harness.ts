/**
 * End-to-end harness: a real VS Code workbench (code-server, provisioned by
 * scripts/provision-e2e.sh) driven by Debian's headless Chromium through playwright-core.
 *
 * Typical use in a mocha suite:
 *
 *   const server = await startCodeServer({ vsix, workspace });
 *   const browser = await launchBrowser();
 *   await openWorkbench(browser.page, server.url, workspace);
 *   await runCommand(browser.page, 'My Extension: Do Something');
 *   ...
 *   await browser.close();
 *   await server.stop();
 *
 * Nothing here talks to anything but 127.0.0.1: code-server gets no extension gallery and no
 * telemetry, Chromium gets flags that keep it quiet, and non-local requests are recorded.
 */
export * from './harness/provision';
export * from './harness/codeServer';
export * from './harness/browser';
export * from './harness/workbench';
