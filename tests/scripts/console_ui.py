"""Drives TRD's operator console in headless Chromium (Debian's, through its WebDriver).

Usage:
  console_ui.py flow BASE OPERATE_KEY READ_KEY USER PASSWORD BATCH SHOTS_DIR DOWNLOADS_DIR ODD_ID FILE...
      sign in, upload FILEs into a new BATCH by the file input, start, stop, reset and start
      again with the batch's buttons, watch the bars reach 100 %, open the first file, play it
      and follow the highlighted word, click a word, download the SRT; then sign in with a
      read-only key and look for the buttons, and as a user limited to other batches. ODD_ID
      is a record whose format browsers do not play: its page must play a WAV copy.
  console_ui.py firefox BASE KEY BATCH FILE_ID SHOTS_DIR GECKODRIVER
      the console's pages in headless Firefox (ESR, through geckodriver): sign in, the batch's
      bars, its table, the file's transcript followed while it plays, a click on a word.
  console_ui.py budget BASE READ_KEY BATCH SHOTS_DIR
      loads the batch's page with an empty cache and measures when its table is drawn and
      what the page transferred.

Prints one JSON line with what it observed; the Rust test asserts on it. Screenshots of each
page go to SHOTS_DIR.
"""
import json
import os
import shutil
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


def browser(downloads=None, width=1280, height=1000):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--autoplay-policy=no-user-gesture-required",
                "--mute-audio"):
        options.add_argument(arg)
    if downloads:
        options.add_experimental_option("prefs", {
            "download.default_directory": downloads,
            "download.prompt_for_download": False,
        })
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    if downloads:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": downloads})
    return driver


def firefox(geckodriver, width=1280, height=1000):
    options = webdriver.FirefoxOptions()
    options.binary_location = shutil.which("firefox-esr") or shutil.which("firefox")
    options.add_argument("-headless")
    options.add_argument(f"--width={width}")
    options.add_argument(f"--height={height}")
    # Media may play without a user's gesture.
    options.set_preference("media.autoplay.default", 0)
    return webdriver.Firefox(service=webdriver.FirefoxService(geckodriver), options=options)


def shot(driver, shots, name):
    path = os.path.join(shots, f"{name}.png")
    driver.save_screenshot(path)
    return path


def sign_in(driver, wait, base, key):
    driver.get(base + "/trd/ui")
    wait.until(EC.url_contains("/trd/ui/sign-in"))
    field = wait.until(EC.element_to_be_clickable((By.ID, "key")))
    field.send_keys(key)
    driver.find_element(By.ID, "key-submit").click()
    wait.until(lambda d: "/sign-in" not in d.current_url)
    return wait.until(lambda d: d.find_element(By.ID, "who").text or None)


def batch_card(driver, batch):
    return driver.find_element(By.CSS_SELECTOR, f'section.card[data-batch="{batch}"]')


# The cards are redrawn as the figures come in: read them in one script, never through an
# element found earlier.
def bar(driver, batch, stage):
    return driver.execute_script(
        "const b = document.querySelector(`section.card[data-batch='${arguments[0]}'] "
        "progress[data-stage='${arguments[1]}']`); return b ? b.value : null;", batch, stage)


def controls(driver, batch):
    return driver.execute_script(
        "const chips = document.querySelectorAll(`section.card[data-batch='${arguments[0]}'] [data-control]`);"
        "return Object.fromEntries([...chips].map(c => [c.dataset.control, c.textContent]));", batch)


def press(driver, batch, action, confirm=False):
    batch_card(driver, batch).find_element(By.CSS_SELECTOR, f'button[data-action="{action}"]').click()
    if confirm:
        WebDriverWait(driver, 10).until(EC.element_to_be_clickable((By.ID, "confirm-ok"))).click()


def flow(base, operate_key, read_key, user, password, batch, shots, downloads, odd_id, files):
    out = {}
    driver = browser(downloads)
    wait = WebDriverWait(driver, 60)
    try:
        # Sign in with the operator's key.
        driver.get(base + "/trd/ui")
        wait.until(EC.url_contains("/trd/ui/sign-in"))
        out["screens"] = [shot(driver, shots, "sign-in")]
        out["who"] = sign_in(driver, wait, base, operate_key)

        # Upload the files into a new batch through the file input.
        driver.get(base + "/trd/ui/upload")
        wait.until(EC.presence_of_element_located((By.ID, "batch"))).send_keys(batch)
        driver.find_element(By.ID, "files").send_keys("\n".join(files))
        wait.until(lambda d: d.find_element(By.ID, "upload-summary").get_attribute("data-done"))
        out["uploaded"] = {row.get_attribute("data-file"): row.get_attribute("data-state")
                           for row in driver.find_elements(By.CSS_SELECTOR, "#uploads li")}
        out["screens"].append(shot(driver, shots, "upload"))

        # Start, stop and reset with the batch's buttons, then start for good.
        driver.get(base + "/trd/ui")
        wait.until(lambda d: batch_card(d, batch))
        press(driver, batch, "start")
        wait.until(lambda d: "RUNNING" in controls(d, batch) or "FINISHED" in controls(d, batch))
        out["started"] = controls(driver, batch)
        press(driver, batch, "stop")
        wait.until(lambda d: "RUNNING" not in controls(d, batch))
        out["stopped"] = controls(driver, batch)
        press(driver, batch, "reset", confirm=True)
        wait.until(lambda d: set(controls(d, batch)) <= {"IDLE", "FINISHED"})
        out["reset"] = controls(driver, batch)
        press(driver, batch, "start")
        overall = []
        deadline = time.time() + 400
        while time.time() < deadline:
            value = bar(driver, batch, "progress")
            if value is None:
                time.sleep(0.25)
                continue
            if not overall or overall[-1] != value:
                overall.append(value)
            if value >= 1 and "RUNNING" not in controls(driver, batch):
                break
            time.sleep(0.25)
        out["overall"] = overall
        out["bars_at_end"] = {s: bar(driver, batch, s) for s in ("normalization", "diarization", "recognition", "progress")}
        out["controls_at_end"] = controls(driver, batch)
        out["screens"].append(shot(driver, shots, "batches"))

        # The batch's page: its table, then the first file.
        driver.find_element(By.LINK_TEXT, batch).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#files tbody tr")))
        out["rows"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#files tbody tr")]
        out["screens"].append(shot(driver, shots, "batch"))
        first = os.path.basename(files[0])
        driver.find_element(By.LINK_TEXT, first).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#transcript .w")))
        wait.until(lambda d: d.execute_script("return document.getElementById('audio').readyState") >= 1)

        # Play with the keyboard and follow the highlighted word.
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)
        samples = []
        for _ in range(8):
            time.sleep(0.6)
            samples.append(driver.execute_script("""
                const a = document.getElementById('audio'), w = document.querySelector('.w.current');
                return {time: a.currentTime, paused: a.paused,
                        word: w && w.textContent, start: w && Number(w.dataset.start),
                        end: w && Number(w.dataset.end)};"""))
        out["playing"] = samples
        out["screens"].append(shot(driver, shots, "file"))
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)
        time.sleep(0.3)
        out["paused_by_space"] = driver.execute_script("return document.getElementById('audio').paused")

        # Click a word well into the recording: playback moves there.
        words = driver.find_elements(By.CSS_SELECTOR, "#transcript .w")
        target = words[len(words) * 2 // 3]
        target.location_once_scrolled_into_view
        target.click()
        time.sleep(0.4)
        out["clicked"] = {"start": float(target.get_attribute("data-start")),
                          "time": driver.execute_script("return document.getElementById('audio').currentTime")}
        # → moves to the next segment.
        before = driver.execute_script("return document.getElementById('audio').currentTime")
        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
        time.sleep(0.4)
        out["arrow"] = {"before": before,
                        "after": driver.execute_script("return document.getElementById('audio').currentTime"),
                        "starts": [float(s.get_attribute("data-start")) for s in
                                   driver.find_elements(By.CSS_SELECTOR, "#transcript article.seg")]}

        # Download the SRT.
        driver.find_element(By.CSS_SELECTOR, '#file-downloads button[data-format="srt"]').click()
        deadline = time.time() + 30
        srt = None
        while time.time() < deadline and srt is None:
            for name in os.listdir(downloads):
                if name.endswith(".srt"):
                    with open(os.path.join(downloads, name), encoding="utf-8") as f:
                        srt = {"name": name, "text": f.read()}
            time.sleep(0.2)
        out["srt"] = srt

        # A recording in a format the browser does not play: the page falls back to a WAV copy.
        driver.get(f"{base}/trd/ui/file/{odd_id}")
        wait.until(lambda d: d.execute_script(
            "const a = document.getElementById('audio'); return a && a.readyState >= 1"))
        out["odd"] = driver.execute_script(
            "const a = document.getElementById('audio');"
            "return {src: a.currentSrc, duration: a.duration, copy: a.dataset.copy || null,"
            " note: document.getElementById('player-note').textContent};")

        driver.get(base + "/trd/ui/health")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#queues tbody tr")))
        out["health"] = {
            "dependencies": [d.text for d in driver.find_elements(By.CSS_SELECTOR, "[data-dependency]")],
            "queues": [q.get_attribute("data-queue") for q in driver.find_elements(By.CSS_SELECTOR, "#queues tbody tr")],
        }
        out["screens"].append(shot(driver, shots, "health"))

        # A read-only key sees the same batch without a single button that changes it.
        driver.find_element(By.ID, "sign-out").click()
        wait.until(EC.url_contains("/trd/ui/sign-in"))
        out["reader"] = sign_in(driver, wait, base, read_key)
        wait.until(lambda d: batch_card(d, batch))
        out["reader_batches_buttons"] = len(driver.find_elements(By.CSS_SELECTOR, "button[data-action]"))
        out["reader_upload_link_shown"] = driver.find_element(By.ID, "nav-upload").is_displayed()
        out["screens"].append(shot(driver, shots, "batches-read-only"))
        driver.find_element(By.LINK_TEXT, batch).click()
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#files tbody tr")))
        out["reader_batch_buttons"] = len(driver.find_elements(By.CSS_SELECTOR, "button[data-action]"))
        out["reader_downloads"] = len(driver.find_elements(By.CSS_SELECTOR, "#batch-downloads button"))
        # A phone's width: the page still fits.
        driver.set_window_size(390, 844)
        time.sleep(0.3)
        out["phone_overflow"] = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        out["screens"].append(shot(driver, shots, "batch-phone"))
        driver.set_window_size(1280, 1000)

        # A user limited to other batches signs in with a name and password: the batch is not
        # there for them, nor its page.
        driver.find_element(By.ID, "sign-out").click()
        wait.until(EC.url_contains("/trd/ui/sign-in"))
        wait.until(EC.element_to_be_clickable((By.ID, "username"))).send_keys(user)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "#user-form button").click()
        wait.until(lambda d: "/sign-in" not in d.current_url)
        out["user"] = wait.until(lambda d: d.find_element(By.ID, "who").text or None)
        wait.until(lambda d: d.execute_script("return document.documentElement.dataset.updated"))
        out["user_batches"] = [c.get_attribute("data-batch") for c in
                               driver.find_elements(By.CSS_SELECTOR, "section.card[data-batch]")]
        driver.get(f"{base}/trd/ui/batch/{batch}")
        out["user_batch_page"] = wait.until(
            lambda d: d.find_element(By.CSS_SELECTOR, "main [role=alert]").text or None)
    finally:
        driver.quit()
    print(json.dumps(out))


def in_firefox(base, key, batch, file_id, shots, geckodriver):
    out = {}
    driver = firefox(geckodriver)
    wait = WebDriverWait(driver, 60)
    try:
        out["who"] = sign_in(driver, wait, base, key)
        wait.until(lambda d: bar(d, batch, "progress") is not None)
        out["bars"] = {s: bar(driver, batch, s) for s in ("normalization", "diarization", "recognition", "progress")}
        out["buttons"] = len(driver.find_elements(By.CSS_SELECTOR, "button[data-action]"))
        driver.get(f"{base}/trd/ui/batch/{batch}")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#files tbody tr")))
        out["rows"] = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#files tbody tr")]
        driver.get(f"{base}/trd/ui/file/{file_id}")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#transcript .w")))
        wait.until(lambda d: d.execute_script("return document.getElementById('audio').readyState") >= 1)
        # The keyboard, as a person presses it (geckodriver sends an element's keys to that
        # element only when it takes focus; the page listens on the document).
        ActionChains(driver).send_keys(Keys.SPACE).perform()
        samples = []
        for _ in range(6):
            time.sleep(0.6)
            samples.append(driver.execute_script(
                "const a = document.getElementById('audio'), w = document.querySelector('.w.current');"
                "return {time: a.currentTime, paused: a.paused, word: w && w.textContent,"
                " start: w && Number(w.dataset.start), end: w && Number(w.dataset.end),"
                " error: a.dataset.playError || null, load: a.dataset.loadError || null, src: a.currentSrc};"))
        out["playing"] = samples
        out["screen"] = shot(driver, shots, "file-firefox")
        ActionChains(driver).send_keys(Keys.SPACE).perform()
        words = driver.find_elements(By.CSS_SELECTOR, "#transcript .w")
        target = words[len(words) // 2]
        target.location_once_scrolled_into_view
        target.click()
        time.sleep(0.4)
        out["clicked"] = {"start": float(target.get_attribute("data-start")),
                          "time": driver.execute_script("return document.getElementById('audio').currentTime")}
    finally:
        driver.quit()
    print(json.dumps(out))


def budget(base, read_key, batch, shots):
    driver = browser()
    wait = WebDriverWait(driver, 60)
    try:
        driver.get(base + "/trd/ui/sign-in")
        driver.execute_script("sessionStorage.setItem('trd.credential', arguments[0])", read_key)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.clearBrowserCache", {})
        driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
        driver.get(f"{base}/trd/ui/batch/{batch}")
        wait.until(lambda d: d.execute_script("return document.documentElement.dataset.rendered"))
        measured = driver.execute_script("""
            const nav = performance.getEntriesByType('navigation')[0];
            const resources = performance.getEntriesByType('resource');
            return {rendered_ms: Number(document.documentElement.dataset.rendered),
                    transferred: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
                    resources: resources.map(r => [r.name, r.transferSize]),
                    rows: document.querySelectorAll('#files tbody tr').length};""")
        measured["screen"] = shot(driver, shots, "batch-1000-files")
        # Filtering and sorting the table.
        rows = lambda: driver.execute_script("return document.querySelectorAll('#files tbody tr').length")
        driver.find_element(By.ID, "filter").send_keys("call-00")
        measured["filtered_by_name"] = rows()
        driver.find_element(By.ID, "filter").clear()
        driver.find_element(By.ID, "filter").send_keys(Keys.BACKSPACE)
        Select(driver.find_element(By.ID, "control-filter")).select_by_value("FAILED")
        measured["filtered_by_control"] = rows()
        measured["failed_problems"] = driver.execute_script(
            "return [...document.querySelectorAll('#files tbody tr td:last-child')].map(td => td.textContent)")
        Select(driver.find_element(By.ID, "control-filter")).select_by_value("")
        header = driver.find_element(By.CSS_SELECTOR, 'th[data-key="duration"] button')
        header.click()
        header.click()
        measured["sorted"] = driver.find_element(By.CSS_SELECTOR, 'th[data-key="duration"]').get_attribute("aria-sort")
        measured["durations"] = driver.execute_script(
            "return [...document.querySelectorAll('#files tbody tr td:nth-child(4)')].slice(0, 10).map(td => td.textContent)")
    finally:
        driver.quit()
    print(json.dumps(measured))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "flow":
        flow(*sys.argv[2:11], sys.argv[11:])
    elif mode == "firefox":
        in_firefox(*sys.argv[2:8])
    elif mode == "budget":
        budget(*sys.argv[2:6])
    else:
        sys.exit(f"unknown mode {mode}")
