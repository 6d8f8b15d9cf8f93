"""Loads TRD's Swagger UI in headless Chromium, enters a key with "Authorize" and uses
"Try it out" on the batch status.

Usage: swagger_ui.py BASE_URL BATCH SCREENSHOT.png KEY
Prints one JSON line: the operations the page lists, the status code and body the UI
received when it executed the request, and where the screenshot is.
"""
import json
import shutil
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, batch, screenshot, key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
options = webdriver.ChromeOptions()
options.binary_location = shutil.which("chromium")
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1400,2400"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
try:
    wait = WebDriverWait(driver, 30)
    driver.get(base + "/trd/docs")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
    listed = [
        (block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text,
         block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path"))
        for block in driver.find_elements(By.CSS_SELECTOR, ".opblock")
    ]
    # "Authorize": the key as the bearer credential, for every request the page makes.
    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    bearer = next(
        c for c in wait.until(EC.presence_of_all_elements_located((By.CSS_SELECTOR, ".auth-container")))
        if "bearer" in c.text
    )
    bearer.find_element(By.CSS_SELECTOR, "input").send_keys(key)
    bearer.find_element(By.CSS_SELECTOR, "button.authorize").click()
    driver.find_element(By.CSS_SELECTOR, ".btn-done").click()
    target = "/trd/transcription/status/batch/{batch}"
    block_id = "operations-transcription-status_batch"
    driver.find_element(By.CSS_SELECTOR, f"#{block_id} .opblock-summary").click()
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, f"#{block_id} .try-out__btn"))).click()
    field = wait.until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f"#{block_id} tr[data-param-name='batch'] input")))
    field.clear()
    field.send_keys(batch)
    driver.find_element(By.CSS_SELECTOR, f"#{block_id} .execute").click()
    code = wait.until(EC.presence_of_element_located(
        (By.CSS_SELECTOR, f"#{block_id} .live-responses-table tbody .response-col_status")))
    body = driver.find_element(
        By.CSS_SELECTOR, f"#{block_id} .live-responses-table .response-col_description pre")
    driver.find_element(By.CSS_SELECTOR, f"#{block_id}").location_once_scrolled_into_view
    driver.save_screenshot(screenshot)
    print(json.dumps({"title": driver.title, "operations": listed, "executed": target,
                      "status": code.text.strip(), "body": body.text, "screenshot": screenshot}))
finally:
    driver.quit()
