/* The portal's only script besides Swagger UI: copy buttons and files
 * read into text areas.  The pages hook it with data- attributes (the
 * Content-Security-Policy allows no inline script). */
(function () {
    'use strict';

    function copied(button) {
        var label = button.textContent;
        button.textContent = button.getAttribute('data-copied') || 'Copied';
        button.classList.add('done');
        window.setTimeout(function () {
            button.textContent = label;
            button.classList.remove('done');
        }, 2000);
    }

    document.addEventListener('click', function (ev) {
        var button = ev.target.closest('[data-copy]');
        if (!button) {
            return;
        }
        var input = document.getElementById(button.getAttribute('data-copy'));
        if (!input) {
            return;
        }
        input.select();
        if (navigator.clipboard && window.isSecureContext) {
            navigator.clipboard.writeText(input.value).then(function () {
                copied(button);
            }, function () {
                if (document.execCommand('copy')) {
                    copied(button);
                }
            });
        } else if (document.execCommand('copy')) {
            copied(button);
        }
    });

    document.addEventListener('change', function (ev) {
        var input = ev.target;
        if (!input.matches || !input.matches('input[type=file][data-fill]')) {
            return;
        }
        var area = document.getElementById(input.getAttribute('data-fill'));
        var file = input.files && input.files[0];
        if (!area || !file) {
            return;
        }
        var reader = new FileReader();
        reader.onload = function () {
            area.value = String(reader.result);
        };
        reader.readAsText(file);
    });
}());
